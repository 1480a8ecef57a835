namespace ProbeGen.Uprobes;

/// <summary>
/// A waitpid status, decoded once: whether the tracee stopped, and if so the signal and the
/// ptrace event (PTRACE_EVENT_*, 0 for a signal-delivery-stop) that stopped it.
/// </summary>
/// <param name="Raw">The status as waitpid wrote it.</param>
internal readonly record struct WaitStatus(int Raw)
{
    /// <summary>Whether the tracee is in a ptrace-stop (otherwise it exited or was killed).</summary>
    public bool Stopped => Ptrace.Stopped(Raw);

    /// <summary>The signal of a stop.</summary>
    public int Signal => (Raw >> 8) & 0xff;

    /// <summary>The ptrace event of a stop; 0 for a signal-delivery-stop.</summary>
    public int Event => Raw >> 16;

    /// <summary>A signal-delivery-stop for SIGTRAP: an int3 or a single step.</summary>
    public bool IsTrap => Event == 0 && Signal == Ptrace.SigTrap;
}
