using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Xunit;

// Probes and the ProbeGen meter are process-wide: one test at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace ProbeGen.OpenTelemetry.Tests;

/// <summary>
/// AddProbeGen with the real OpenTelemetry SDK, read through its in-memory exporter: exact counts,
/// exact histogram sums, the probe id as a tag, and nothing attached without a provider.
/// </summary>
public class MetricsTests
{
    private static int s_provider;

    private static (StaticProbeSite<ProbeArgs<string, int>> Fired, MethodProbeSite<ProbeArgs<int, string>, int> Called, string Provider) Sites()
    {
        string provider = "otel" + Interlocked.Increment(ref s_provider);
        var fired = new StaticProbeSite<ProbeArgs<string, int>>(new ProbeDescriptor(provider, "fired", ProbeKind.Static,
            [new ProbeParameter("region", "string"), new ProbeParameter("size", "int")]));
        var called = new MethodProbeSite<ProbeArgs<int, string>, int>(new ProbeDescriptor(provider, "called", ProbeKind.Method,
            [new ProbeParameter("n", "int"), new ProbeParameter("password", "string")], "int"));
        ProbeCatalog.Register(typeof(MetricsTests).Assembly, fired);
        ProbeCatalog.Register(typeof(MetricsTests).Assembly, called);
        return (fired, called, provider);
    }

    private static void Call(MethodProbeSite<ProbeArgs<int, string>, int> site, int n, bool fail)
    {
        var args = new ProbeArgs<int, string>(n, "hunter2");
        long start = site.Entry(in args);
        if (fail)
            site.Throw(in args, new TimeoutException(), start);
        else
            site.Return(in args, n * 2, start);
    }

    private static Dictionary<string, MetricPoint> Points(List<Metric> metrics, string name)
    {
        var result = new Dictionary<string, MetricPoint>();
        foreach (Metric metric in metrics.Where(m => m.Name == name))
        {
            foreach (ref readonly MetricPoint point in metric.GetMetricPoints())
            {
                var tags = new List<string>();
                foreach (KeyValuePair<string, object?> tag in point.Tags)
                    tags.Add($"{tag.Key}={tag.Value}");
                result[string.Join(",", tags.Order())] = point;
            }
        }
        return result;
    }

    [Fact]
    public void CallsErrorsAndDurationsArriveExactlyWithTheProbeIdAsATag()
    {
        var (fired, called, provider) = Sites();
        var exported = new List<Metric>();
        using (MeterProvider meters = Sdk.CreateMeterProviderBuilder()
                   .AddProbeGen(provider + ":*", o => o.TagArguments.Add("region"))
                   .AddInMemoryExporter(exported)
                   .Build())
        {
            for (int i = 0; i < 7; i++)
                fired.Fire(new ProbeArgs<string, int>(i % 2 == 0 ? "eu" : "us", i));
            for (int i = 0; i < 5; i++)
                Call(called, i, fail: i == 3);
            meters.ForceFlush();
        }

        var calls = Points(exported, "probegen.calls");
        Assert.Equal(4, calls[$"probe.id={provider}:fired,region=eu"].GetSumLong());
        Assert.Equal(3, calls[$"probe.id={provider}:fired,region=us"].GetSumLong());
        // A method probe counts calls (entry and return are one call), failed ones included.
        Assert.Equal(5, calls[$"probe.id={provider}:called"].GetSumLong());

        var errors = Points(exported, "probegen.errors");
        Assert.Equal(1, Assert.Single(errors, e => e.Key == $"error.type=System.TimeoutException,probe.id={provider}:called").Value.GetSumLong());

        MetricPoint duration = Points(exported, "probegen.duration")[$"probe.id={provider}:called"];
        Assert.Equal(5, duration.GetHistogramCount());
        Assert.True(duration.GetHistogramSum() >= 0);
        Assert.DoesNotContain(Points(exported, "probegen.duration").Keys, k => k.Contains(":fired"));
    }

    [Fact]
    public void ArgumentHistogramsHaveExactSumsAndRedactedArgumentsAreNeverRecorded()
    {
        var (fired, called, provider) = Sites();
        var exported = new List<Metric>();
        using (MeterProvider meters = Sdk.CreateMeterProviderBuilder()
                   .AddProbeGen(provider + ":*", o =>
                   {
                       o.ArgumentHistograms.Add("size");
                       o.TagArguments.Add("password");  // redacted by name: never a tag
                   })
                   .AddInMemoryExporter(exported)
                   .Build())
        {
            foreach (int size in new[] { 3, 40, 500 })
                fired.Fire(new ProbeArgs<string, int>("eu", size));
            Call(called, 1, fail: false);
            meters.ForceFlush();
        }

        MetricPoint sizes = Points(exported, "probegen.argument")[$"probe.argument=size,probe.id={provider}:fired"];
        Assert.Equal(3, sizes.GetHistogramCount());
        Assert.Equal(543, sizes.GetHistogramSum());
        Assert.Equal(1, Points(exported, "probegen.calls")[$"probe.id={provider}:called"].GetSumLong());
        Assert.DoesNotContain(exported.SelectMany(m => Points(exported, m.Name).Keys), k => k.Contains("hunter2") || k.Contains("password"));
    }

    [Fact]
    public void ProbesAreAttachedOnlyWhileTheProviderLives()
    {
        var (fired, called, provider) = Sites();
        MeterProviderBuilder builder = Sdk.CreateMeterProviderBuilder().AddProbeGen(provider + ":*").AddInMemoryExporter(new List<Metric>());
        Assert.False(fired.IsEnabled);  // configuring attaches nothing
        MeterProvider meters = builder.Build();
        Assert.True(fired.IsEnabled);
        Assert.True(called.IsEnabled);
        meters.Dispose();
        Assert.False(fired.IsEnabled);
        Assert.False(called.IsEnabled);
    }

    [Fact]
    public void ABadPatternFailsAtConfiguration() =>
        Assert.Throws<ArgumentException>(() => Sdk.CreateMeterProviderBuilder().AddProbeGen("not a pattern"));
}
