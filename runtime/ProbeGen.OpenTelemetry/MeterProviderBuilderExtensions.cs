using System;
using OpenTelemetry.Metrics;

namespace ProbeGen.OpenTelemetry;

/// <summary>Adds ProbeGen probes to an OpenTelemetry MeterProvider.</summary>
public static class MeterProviderBuilderExtensions
{
    /// <summary>
    /// Records the probes matching <paramref name="pattern"/> into the <c>ProbeGen</c> meter
    /// (<c>probegen.calls</c>, <c>probegen.errors</c>, <c>probegen.duration</c>, tagged
    /// <c>probe.id</c>) and adds that meter to the provider. The probes are attached when the
    /// provider is built and detached when it is disposed: without a provider they cost nothing.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="pattern">A probe pattern such as <c>orders:*</c>; every probe by default.</param>
    /// <param name="configure">Chooses argument tags and argument histograms.</param>
    /// <returns>The builder, for chaining.</returns>
    public static MeterProviderBuilder AddProbeGen(this MeterProviderBuilder builder, string pattern = "*", Action<ProbeGenMetricsOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ProbePattern parsed = ProbePattern.Parse(pattern);  // a bad pattern fails here, at configuration, not at build
        var options = new ProbeGenMetricsOptions();
        configure?.Invoke(options);
        ProbeMetricsOptions core = options.ToCore();
        builder.AddMeter(ProbeMeter.Name);
        return builder.AddInstrumentation(() => new ProbeGenInstrumentation(ProbeMetrics.Enable(parsed, core)));
    }
}
