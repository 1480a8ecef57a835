using System;
using System.Linq;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using ProbeGen.OpenTelemetry;
using Shop.Data;
using Shop.Services;
using Shop.Web;

// Shop: an ASP.NET Core service in three projects (web -> services -> data) wired by DI. Every
// probe sits on an implementation method and is called through its interface from another project.
// --requests N drives the service with N real HTTP requests from a built-in client, then stops,
// so a trace of it ends by itself. Without it the service runs until Ctrl-C.
int requests = 0;
if (args.SkipWhile(a => a != "--requests").Skip(1).FirstOrDefault() is { } n && (!int.TryParse(n, out requests) || requests < 0))
{
    Console.Error.WriteLine($"--requests needs a count, not '{n}'");
    return 2;
}

WebApplicationBuilder builder = WebApplication.CreateBuilder(args);
if (!args.Any(a => a.StartsWith("--urls", StringComparison.Ordinal)))
    builder.WebHost.UseUrls(requests > 0 ? "http://127.0.0.1:0" : "http://127.0.0.1:5080");
if (!args.Contains("--verbose"))
    builder.Logging.ClearProviders();
builder.Services.AddShopData().AddShopServices();
// The probes in the OpenTelemetry pipeline a fleet already runs: per-probe calls, errors and
// durations on the Prometheus endpoint (GET /metrics), and each probed call a span under its
// request's span, exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT names a collector.
builder.Services.AddOpenTelemetry()
    .WithMetrics(metrics => metrics.AddProbeGen("*").AddPrometheusExporter())
    .WithTracing(tracing =>
    {
        tracing.AddAspNetCoreInstrumentation().AddProbeGen("*");
        if (Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 })
            tracing.AddOtlpExporter();
    });
if (requests > 0)
    builder.Services.AddSingleton(new LoadClient.Options(requests)).AddHostedService<LoadClient>();

WebApplication app = builder.Build();
app.MapPrometheusScrapingEndpoint();

// Handlers are lambdas that call the services: an ordinary call site, which the generator
// intercepts (a method group passed to MapGet would be called by the framework through a delegate).
app.MapGet("/products", (IProductRepository products) => products.All());
app.MapGet("/products/{sku}", (string sku, IProductRepository products) =>
    products.Find(sku) is { } product ? Results.Ok(product) : Results.NotFound());
app.MapPost("/orders", async (OrderRequest request, ICheckout checkout) =>
{
    CheckoutResult result = await checkout.PlaceAsync(request.Customer, request.Card, request.Skus);
    return result.Placed ? Results.Ok(result) : Results.UnprocessableEntity(result);
});

await app.RunAsync();
return 0;

namespace Shop.Web
{
    /// <summary>The body of <c>POST /orders</c>.</summary>
    public sealed record OrderRequest(string Customer, string Card, string[] Skus);
}
