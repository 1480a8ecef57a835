using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using ProbeGen.OpenTelemetry;

namespace ProbeGen.Benchmarks;

/// <summary>Method probes for the observability rows: one recorded as metrics, one as spans.</summary>
[ProbeProvider("otelbench")]
public class Observed
{
    [Probe("metered")]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public int Metered(int x) => x + 1;

    [Probe("spanned")]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public int Spanned(int x) => x + 1;

    /// <summary>The same body, unprobed, for the hand-written peers.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public int Plain(int x) => x + 1;
}

/// <summary>
/// A probed call recorded by <c>AddProbeGen</c> into the real OpenTelemetry SDK, against its
/// peers in the same run: OpenTelemetry's own <see cref="Histogram{T}.Record(T, KeyValuePair{string, object?})"/>
/// with the same tag, the same call hand-instrumented with a counter and a histogram, and a
/// hand-written <see cref="ActivitySource.StartActivity(string, ActivityKind)"/> around the call.
/// </summary>
[MemoryDiagnoser]
public class ObservabilityBenchmarks
{
    private const int Calls = 1000;
    private static readonly ActivitySource HandSource = new("ProbeGen.Benchmarks.Hand");
    private static readonly Meter HandMeter = new("ProbeGen.Benchmarks.Hand");
    private static readonly Histogram<double> HandHistogram = HandMeter.CreateHistogram<double>("hand.duration", "s");
    private static readonly Counter<long> HandCounter = HandMeter.CreateCounter<long>("hand.calls");
    private static readonly KeyValuePair<string, object?> Tag = new("probe.id", "otelbench:metered");

    private readonly Observed _observed = new();
    private MeterProvider? _meters;
    private TracerProvider? _tracer;

    [GlobalSetup]
    public void Setup()
    {
        // A reader that exports rarely: the SDK aggregates every measurement, as in production,
        // and the export cost stays out of the measured calls.
        _meters = Sdk.CreateMeterProviderBuilder().AddProbeGen("otelbench:metered").AddMeter(HandMeter.Name)
            .AddReader(new PeriodicExportingMetricReader(new DiscardingExporter(), exportIntervalMilliseconds: 600_000))
            .Build();
        _tracer = Sdk.CreateTracerProviderBuilder().AddProbeGen("otelbench:spanned").AddSource(HandSource.Name)
            .AddProcessor(new SimpleActivityExportProcessor(new DiscardingSpanExporter()))
            .Build();
    }

    /// <summary>Exports nowhere: the rows measure recording and aggregation, not an exporter.</summary>
    private sealed class DiscardingExporter : BaseExporter<Metric>
    {
        public override ExportResult Export(in Batch<Metric> batch) => ExportResult.Success;
    }

    /// <inheritdoc cref="DiscardingExporter"/>
    private sealed class DiscardingSpanExporter : BaseExporter<Activity>
    {
        public override ExportResult Export(in Batch<Activity> batch) => ExportResult.Success;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _meters?.Dispose();
        _tracer?.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Calls)]
    public int ProbeMetricsCall()
    {
        int sum = 0;
        for (int i = 0; i < Calls; i++)
            sum += _observed.Metered(i);
        return sum;
    }

    [Benchmark(OperationsPerInvoke = Calls)]
    public int OtelHistogramRecord()
    {
        int sum = 0;
        for (int i = 0; i < Calls; i++)
        {
            HandHistogram.Record(i * 1e-9, Tag);
            sum += i;
        }
        return sum;
    }

    [Benchmark(OperationsPerInvoke = Calls)]
    public int HandInstrumentedCall()
    {
        int sum = 0;
        for (int i = 0; i < Calls; i++)
        {
            long start = Stopwatch.GetTimestamp();
            sum += _observed.Plain(i);
            HandCounter.Add(1, Tag);
            HandHistogram.Record(Stopwatch.GetElapsedTime(start).TotalSeconds, Tag);
        }
        return sum;
    }

    [Benchmark(OperationsPerInvoke = Calls)]
    public int ProbeSpanCall()
    {
        int sum = 0;
        for (int i = 0; i < Calls; i++)
            sum += _observed.Spanned(i);
        return sum;
    }

    [Benchmark(OperationsPerInvoke = Calls)]
    public int HandWrittenActivity()
    {
        int sum = 0;
        for (int i = 0; i < Calls; i++)
        {
            using Activity? activity = HandSource.StartActivity("otelbench:spanned");
            activity?.SetTag("probe.id", "otelbench:spanned");
            activity?.SetTag("probe.arg.x", i);
            sum += _observed.Plain(i);
        }
        return sum;
    }
}
