using System;

namespace ProbeGen.Uprobes;

/// <summary>Attached native probes, whichever backend: hits arrive through the callback given at start; dispose to detach.</summary>
public interface IUprobeSession : IDisposable
{
    /// <summary>Hits delivered.</summary>
    long Hits { get; }

    /// <summary>Hits that happened but could not be delivered (full ring buffers, too deeply nested returns).</summary>
    long Dropped { get; }
}
