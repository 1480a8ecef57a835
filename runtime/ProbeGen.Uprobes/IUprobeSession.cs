using System;

namespace ProbeGen.Uprobes;

/// <summary>Attached native probes, whichever backend: hits arrive through the callback given at start; dispose to detach.</summary>
public interface IUprobeSession : IDisposable
{
    /// <summary>Hits delivered.</summary>
    long Hits { get; }

    /// <summary>Hits that happened but could not be delivered (full ring buffers, too deeply nested returns).</summary>
    long Dropped { get; }

    /// <summary>A launched program's exit status once it has exited (128 + the signal if a signal killed it); otherwise null.</summary>
    int? ExitCode { get; }

    /// <summary>Waits until the traced program has exited (a ptrace session also ends when disposed).</summary>
    /// <exception cref="System.InvalidOperationException">A perf session that did not launch its program: it never ends by itself.</exception>
    bool WaitForEnd(System.TimeSpan timeout);
}
