using System;
using OpenTelemetry.Trace;

namespace ProbeGen.OpenTelemetry;

/// <summary>Adds ProbeGen probes to an OpenTelemetry TracerProvider.</summary>
public static class TracerProviderBuilderExtensions
{
    /// <summary>
    /// Makes each call of a method probe matching <paramref name="pattern"/> a span of the
    /// <c>ProbeGen</c> source (a child of the current span, the parent of the call's own spans,
    /// ended when an awaitable completes, with arguments as tags unless redacted, and an
    /// exception as an event and the error status), and adds that source to the provider. The
    /// probes are attached when the provider is built and detached when it is disposed.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="pattern">A probe pattern such as <c>orders:*</c>; every probe by default.</param>
    /// <param name="configure">Chooses the span's tags.</param>
    /// <returns>The builder, for chaining.</returns>
    public static TracerProviderBuilder AddProbeGen(this TracerProviderBuilder builder, string pattern = "*", Action<ProbeGenTracingOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ProbePattern parsed = ProbePattern.Parse(pattern);
        var options = new ProbeGenTracingOptions();
        configure?.Invoke(options);
        var core = new ProbeSpanOptions { ArgumentTags = options.ArgumentTags, MaxTagLength = options.MaxTagLength };
        builder.AddSource(ProbeSpans.SourceName);
        return builder.AddInstrumentation(() => new ProbeGenInstrumentation(ProbeSpans.Enable(parsed, core)));
    }
}

/// <summary>What <see cref="TracerProviderBuilderExtensions.AddProbeGen"/> puts on each span.</summary>
public sealed class ProbeGenTracingOptions
{
    /// <summary>Whether arguments become tags (<c>probe.arg.NAME</c>); redacted ones read <c>[redacted]</c>. True by default.</summary>
    public bool ArgumentTags { get; set; } = true;

    /// <summary>The longest string tag, in characters. 256 by default.</summary>
    public int MaxTagLength { get; set; } = 256;
}
