using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Xunit;

namespace ProbeGen.OpenTelemetry.Tests;

/// <summary>
/// AddProbeGen for spans in a real ASP.NET Core app, traced by the real ASP.NET Core instrumentation
/// from a real HTTP request: each probed call is a child of the request span, its own work nests
/// under it, an async call's span lasts until its task completes, and the caller goes on under
/// the request span, not under a span still open.
/// </summary>
public class SpanTests
{
    private static readonly ActivitySource Work = new("ProbeGen.Tests.Work");
    private static int s_provider;

    /// <summary>A method probe's site, called exactly as a generated interceptor calls it.</summary>
    private sealed class Probed
    {
        public readonly MethodProbeSite<ProbeArgs<string, string>, int> Site;

        public Probed(string provider)
        {
            Site = new(new ProbeDescriptor(provider, "lookup", ProbeKind.Method,
                [new ProbeParameter("sku", "string"), new ProbeParameter("apiKey", "string")], "int"));
            ProbeCatalog.Register(typeof(SpanTests).Assembly, Site);
        }

        public Task<int> LookupAsync(string sku, string apiKey, TaskCompletionSource release, bool fail)
        {
            if (!Site.IsEnabled)
                return Body(release, fail);
            var args = new ProbeArgs<string, string>(sku, apiKey);
            long start = Site.Entry(in args);
            Task<int> result;
            try
            {
                result = Body(release, fail);
            }
            catch (Exception e) when (Site.Throw(in args, e, start))
            {
                throw;
            }
            return Site.ReturnWhenCompleted(result, args, start);
        }

        private static async Task<int> Body(TaskCompletionSource release, bool fail)
        {
            using (Work.StartActivity("inside"))
                await release.Task;
            return fail ? throw new TimeoutException("slow backend") : 42;
        }
    }

    [Fact]
    public async Task AProbedCallIsAChildOfTheRequestSpanAndOutlivesItsReturnUntilItsTaskCompletes()
    {
        string provider = "span" + Interlocked.Increment(ref s_provider);
        var probed = new Probed(provider);
        var spans = new List<Activity>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Services.AddOpenTelemetry().WithTracing(t => t
            .AddAspNetCoreInstrumentation()
            .AddProbeGen(provider + ":*")
            .AddSource(Work.Name)
            .AddInMemoryExporter(spans));
        await using WebApplication app = builder.Build();
        app.MapGet("/order/{sku}", async (string sku, bool? fail) =>
        {
            var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Task<int> pending = probed.LookupAsync(sku, "secret-key-123", release, fail == true);
            // The call returned while its task is pending: this work belongs to the request, not to the call.
            using (Work.StartActivity("after-call"))
            {
            }
            release.SetResult();
            try
            {
                return (await pending).ToString();
            }
            catch (TimeoutException)
            {
                return "timeout";
            }
        });
        await app.StartAsync();
        string url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var http = new HttpClient();
        Assert.Equal("42", await http.GetStringAsync(url + "/order/lamp"));
        Assert.Equal("timeout", await http.GetStringAsync(url + "/order/desk?fail=true"));
        await app.StopAsync();

        Assert.True(spans.Count > 0, "no spans");
        Activity[] requests = spans.Where(s => s.Kind == ActivityKind.Server).ToArray();
        Assert.True(requests.Length == 2, string.Join(", ", spans.Select(s => $"{s.Source.Name}/{s.OperationName}/{s.Kind}")));
        Activity[] calls = spans.Where(s => s.Source.Name == ProbeSpans.SourceName).ToArray();
        Assert.Equal(2, calls.Length);
        foreach (Activity call in calls)
        {
            Activity request = Assert.Single(requests, r => r.SpanId == call.ParentSpanId);
            Assert.Equal(request.TraceId, call.TraceId);
            Assert.Equal($"{provider}:lookup", call.OperationName);
            Assert.Equal($"{provider}:lookup", call.GetTagItem("probe.id"));
            Assert.Equal("[redacted]", call.GetTagItem("probe.arg.apiKey"));
            // The call's own work nests under it; what the request did after the call returned does not.
            Activity inside = Assert.Single(spans, s => s.OperationName == "inside" && s.TraceId == call.TraceId);
            Assert.Equal(call.SpanId, inside.ParentSpanId);
            Activity after = Assert.Single(spans, s => s.OperationName == "after-call" && s.TraceId == call.TraceId);
            Assert.Equal(request.SpanId, after.ParentSpanId);
            // The async call's span lasted until its task completed, after its inner work ended.
            Assert.True(call.StartTimeUtc + call.Duration >= inside.StartTimeUtc + inside.Duration);
        }
        Activity ok = Assert.Single(calls, c => (string?)c.GetTagItem("probe.arg.sku") == "lamp");
        Assert.Equal(ActivityStatusCode.Unset, ok.Status);
        Activity failed = Assert.Single(calls, c => (string?)c.GetTagItem("probe.arg.sku") == "desk");
        Assert.Equal(ActivityStatusCode.Error, failed.Status);
        Assert.Contains(failed.Events, e => e.Name == "exception" && (string?)e.Tags.FirstOrDefault(t => t.Key == "exception.type").Value == "System.TimeoutException");
        Assert.DoesNotContain(spans.SelectMany(s => s.TagObjects), t => t.Value is string v && v.Contains("secret-key-123"));
    }

    [Fact]
    public void WithoutAProviderNothingIsAttached()
    {
        string provider = "span" + Interlocked.Increment(ref s_provider);
        var probed = new Probed(provider);
        TracerProviderBuilder builder = Sdk.CreateTracerProviderBuilder().AddProbeGen(provider + ":*");
        Assert.False(probed.Site.IsEnabled);
        using (builder.Build())
            Assert.True(probed.Site.IsEnabled);
        Assert.False(probed.Site.IsEnabled);
    }
}
