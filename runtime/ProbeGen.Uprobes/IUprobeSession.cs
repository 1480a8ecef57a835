using System;

namespace ProbeGen.Uprobes;

/// <summary>Attached native probes, whichever backend: hits arrive through the callback given at start; dispose to detach.</summary>
/// <remarks>
/// <para><b>Consumer contract.</b> The callback runs on one of the engine's threads, never inside a
/// read-side section of <see cref="Probes.Domain"/>, and one hit at a time per session.</para>
/// <list type="bullet">
/// <item>It may block: that delays the session's own hits (a ptrace session's traced thread waits;
/// a perf session's ring fills and counts drops), never a grace period of the process.</item>
/// <item>It may throw: the exception is contained and reported through <see cref="FaultCount"/>
/// and <see cref="LastFault"/>; the trace goes on.</item>
/// <item>It must not dispose its own session: disposing waits for the thread it runs on.</item>
/// </list>
/// </remarks>
public interface IUprobeSession : IDisposable
{
    /// <summary>The backend behind the session.</summary>
    UprobeBackend Backend { get; }

    /// <summary>Whether the probes were ever in place (a launched program may end without ever mapping the probed binaries).</summary>
    bool Planted { get; }

    /// <summary>
    /// Probes that an earlier tracer of this process left in it when it was killed, found and
    /// removed when this session attached. Only the jump backend leaves any (a jump stays written
    /// until a tracer undoes it); the others report 0.
    /// </summary>
    int LeftoversRemoved => 0;

    /// <summary>What ended the trace early, if anything did: for example a probe that could not be planted at a launched program's entry point.</summary>
    System.Exception? Failure { get; }

    /// <summary>Hits delivered.</summary>
    long Hits { get; }

    /// <summary>Hits that happened but could not be delivered (full ring buffers, too deeply nested returns).</summary>
    long Dropped { get; }

    /// <summary>
    /// Exceptions the consumer threw. Each one is contained: the hit is lost to the consumer, the
    /// trace goes on, and the count and <see cref="LastFault"/> report it.
    /// </summary>
    long FaultCount { get; }

    /// <summary>The most recent exception the consumer threw, if any.</summary>
    System.Exception? LastFault { get; }

    /// <summary>A launched program's exit status once it has exited (128 + the signal if a signal killed it); otherwise null.</summary>
    int? ExitCode { get; }

    /// <summary>Waits until the traced program has exited (a ptrace session also ends when disposed).</summary>
    /// <exception cref="System.InvalidOperationException">A perf session that did not launch its program: it never ends by itself.</exception>
    bool WaitForEnd(System.TimeSpan timeout);
}
