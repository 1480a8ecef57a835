using System;
using System.Collections.Generic;

namespace ProbeGen;

/// <summary>What <see cref="ProbeMetrics.Enable(string, ProbeMetricsOptions?)"/> records besides calls, errors and durations.</summary>
public sealed record ProbeMetricsOptions
{
    /// <summary>The defaults: calls, errors and durations, tagged with the probe id only.</summary>
    public static ProbeMetricsOptions Default { get; } = new();

    /// <summary>
    /// Arguments to add as tags, by name, on the probes that have them. Choose low-cardinality ones
    /// (a status, a region), never ids: every distinct value is a time series. A redacted argument
    /// is never a tag.
    /// </summary>
    public IReadOnlyList<string> TagArguments { get; init; } = [];

    /// <summary>Numeric arguments to record in <see cref="ProbeMeter.Arguments"/>, by name. A redacted one is never recorded.</summary>
    public IReadOnlyList<string> ArgumentHistograms { get; init; } = [];
}

/// <summary>Turns probes into System.Diagnostics.Metrics instruments (<see cref="ProbeMeter"/>).</summary>
public static class ProbeMetrics
{
    /// <summary>
    /// Records the probes matching <paramref name="pattern"/>, now and registered later, into the
    /// <c>ProbeGen</c> meter's instruments until the returned attachment is disposed.
    /// </summary>
    /// <param name="pattern">A <see cref="ProbePattern"/>.</param>
    /// <param name="options">Tags and argument histograms; <see cref="ProbeMetricsOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">The pattern is not valid.</exception>
    public static ProbeAttachment Enable(string pattern, ProbeMetricsOptions? options = null) =>
        Enable(ProbePattern.Parse(pattern), options);

    /// <inheritdoc cref="Enable(string, ProbeMetricsOptions?)"/>
    public static ProbeAttachment Enable(ProbePattern pattern, ProbeMetricsOptions? options = null) =>
        Probes.Attach(pattern, new MetricsConsumer(options ?? ProbeMetricsOptions.Default),
            ProbeAttachOptions.Default with { Points = ProbePoints.Fire | ProbePoints.Return });
}
