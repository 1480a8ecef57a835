using System.Collections.Generic;

namespace ProbeGen.OpenTelemetry;

/// <summary>What <see cref="MeterProviderBuilderExtensions.AddProbeGen"/> records besides calls, errors and durations.</summary>
public sealed class ProbeGenMetricsOptions
{
    /// <summary>Arguments to add as tags, by name. Choose low-cardinality ones: every distinct value is a time series. Redacted arguments are never tags.</summary>
    public IList<string> TagArguments { get; } = new List<string>();

    /// <summary>Numeric arguments to record in the <c>probegen.argument</c> histogram, by name. Redacted arguments are never recorded.</summary>
    public IList<string> ArgumentHistograms { get; } = new List<string>();

    internal ProbeMetricsOptions ToCore() => new() { TagArguments = [.. TagArguments], ArgumentHistograms = [.. ArgumentHistograms] };
}
