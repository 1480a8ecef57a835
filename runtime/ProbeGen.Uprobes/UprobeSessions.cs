using System;
using System.Collections.Generic;

namespace ProbeGen.Uprobes;

/// <summary>Which engine places the probes.</summary>
public enum UprobeBackend
{
    /// <summary>Perf wherever perf_event_open allows it, else ptrace.</summary>
    Auto,

    /// <summary>The kernel's uprobe PMU (<see cref="PerfUprobeSession"/>).</summary>
    Perf,

    /// <summary>int3s written through ptrace (<see cref="PtraceUprobeSession"/>).</summary>
    Ptrace,

    /// <summary>A jump to an in-process trampoline, no trap per hit (<see cref="Jump.JumpUprobeSession"/>).</summary>
    Jump,
}

/// <summary>
/// Starts a session on the backend asked for. <see cref="UprobeBackend.Auto"/> tries perf, and
/// falls back to ptrace when perf is unavailable for a reason of the environment (no uprobe PMU,
/// no permission), since ptrace needs neither; a ptrace session cannot trace every process.
/// </summary>
public static class UprobeSessions
{
    /// <summary>
    /// Attaches to process <paramref name="pid"/>, or, with perf and no pid, to every process that
    /// runs the probed code (no fallback then: ptrace traces one process).
    /// </summary>
    /// <param name="backend">The backend.</param>
    /// <param name="specs">The probes.</param>
    /// <param name="pid">The process; null for every process (perf only).</param>
    /// <param name="onHit">The consumer (see <see cref="IUprobeSession"/> for its contract).</param>
    /// <param name="onFallback">Told why, when <see cref="UprobeBackend.Auto"/> falls back to ptrace.</param>
    /// <exception cref="UprobeException">The probes cannot be attached (the message says why).</exception>
    /// <exception cref="ArgumentException">ptrace asked for with no pid.</exception>
    public static IUprobeSession Start(UprobeBackend backend, IEnumerable<UprobeSpec> specs, int? pid, Action<UprobeHit> onHit, Action<string>? onFallback = null)
    {
        if (backend is UprobeBackend.Ptrace or UprobeBackend.Jump && pid is null)
            throw new ArgumentException($"the {backend.ToString().ToLowerInvariant()} backend traces one process: give its pid", nameof(pid));
        if (backend == UprobeBackend.Jump)
            return Jump.JumpUprobeSession.Start(specs, pid!.Value, onHit);
        if (backend != UprobeBackend.Ptrace && TryPerf(backend, pid is not null, onFallback, () => PerfUprobeSession.Start(specs, pid, onHit)) is { } perf)
            return perf;
        return PtraceUprobeSession.Start(specs, pid!.Value, onHit);
    }

    /// <summary>Starts <paramref name="command"/> with the probes in place before any of its code runs; the session ends when it exits.</summary>
    /// <param name="backend">The backend.</param>
    /// <param name="specs">The probes.</param>
    /// <param name="command">The program and its arguments, looked up on PATH like a shell does.</param>
    /// <param name="onHit">The consumer (see <see cref="IUprobeSession"/> for its contract).</param>
    /// <param name="standardOutput">A file descriptor of this process to become the program's standard output; -1 shares ours.</param>
    /// <param name="onFallback">Told why, when <see cref="UprobeBackend.Auto"/> falls back to ptrace.</param>
    /// <exception cref="UprobeException">The probes cannot be attached or the program cannot be started.</exception>
    public static IUprobeSession Launch(UprobeBackend backend, IEnumerable<UprobeSpec> specs, IReadOnlyList<string> command, Action<UprobeHit> onHit,
        int standardOutput = -1, Action<string>? onFallback = null)
    {
        if (backend == UprobeBackend.Jump)
            return Jump.JumpUprobeSession.Launch(specs, command, onHit, standardOutput);
        if (backend != UprobeBackend.Ptrace && TryPerf(backend, canFallBack: true, onFallback, () => PerfUprobeSession.Launch(specs, command, onHit, standardOutput)) is { } perf)
            return perf;
        return PtraceUprobeSession.Launch(specs, command, onHit, standardOutput);
    }

    /// <summary>A perf session, or null when <see cref="UprobeBackend.Auto"/> should fall back to ptrace.</summary>
    private static PerfUprobeSession? TryPerf(UprobeBackend backend, bool canFallBack, Action<string>? onFallback, Func<PerfUprobeSession> start)
    {
        try
        {
            return start();
        }
        catch (UprobeException ex) when (ex.IsEnvironment && backend == UprobeBackend.Auto && canFallBack)
        {
            // No uprobe PMU, or no permission for it: the fallback needs only ptrace.
            onFallback?.Invoke($"the perf backend is unavailable ({ex.Message}); using ptrace");
            return null;
        }
    }
}
