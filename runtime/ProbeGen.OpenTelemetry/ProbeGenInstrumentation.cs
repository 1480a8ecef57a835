using System;

namespace ProbeGen.OpenTelemetry;

/// <summary>The instrumentation object a provider owns: its disposal, with the provider's, detaches the probes.</summary>
internal sealed class ProbeGenInstrumentation(ProbeAttachment attachment) : IDisposable
{
    public void Dispose() => attachment.Dispose();
}
