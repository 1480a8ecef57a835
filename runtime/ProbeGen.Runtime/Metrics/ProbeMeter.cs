using System.Diagnostics.Metrics;

namespace ProbeGen;

/// <summary>
/// The <see cref="Meter"/> named <c>ProbeGen</c> and its instruments. They record only for probes
/// that someone turned into metrics (<see cref="ProbeMetrics.Enable(string, ProbeMetricsOptions?)"/>, the OpenTelemetry
/// <c>AddProbeGen</c>, or <c>probegen metrics</c>), and only while a listener (an OpenTelemetry
/// MeterProvider, <c>dotnet-counters</c>) has enabled them; otherwise a record is one check.
/// </summary>
public static class ProbeMeter
{
    /// <summary>The meter's name: what <c>AddMeter</c> and <c>dotnet-counters --counters</c> ask for.</summary>
    public const string Name = "ProbeGen";

    /// <summary>The tag that carries the probe id on every instrument.</summary>
    public const string ProbeTag = "probe.id";

    /// <summary>The tag that carries the exception type on <see cref="Errors"/>.</summary>
    public const string ErrorTypeTag = "error.type";

    /// <summary>The tag that names the argument on <see cref="Arguments"/>.</summary>
    public const string ArgumentTag = "probe.argument";

    internal static readonly Meter Meter = new(Name, typeof(ProbeMeter).Assembly.GetName().Version?.ToString());

    /// <summary>Calls of a method probe (counted once, when the call completes) and fires of a static probe.</summary>
    public static readonly Counter<long> Calls = Meter.CreateCounter<long>("probegen.calls", "{call}", "Calls of a method probe, or fires of a static probe.");

    /// <summary>Calls of a method probe that threw, or whose task faulted or was canceled.</summary>
    public static readonly Counter<long> Errors = Meter.CreateCounter<long>("probegen.errors", "{call}", "Calls of a method probe that ended with an exception.");

    /// <summary>How long each call of a method probe took, to the completion of its task for an awaitable.</summary>
    public static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("probegen.duration", "s", "Duration of the calls of a method probe.");

    /// <summary>Values of numeric arguments chosen by <see cref="ProbeMetricsOptions.ArgumentHistograms"/>.</summary>
    public static readonly Histogram<double> Arguments = Meter.CreateHistogram<double>("probegen.argument", null, "Values of a chosen numeric probe argument.");
}
