namespace ProbeGen.Uprobes;

/// <summary>
/// What the tracer knows about one traced thread, like the kernel's <c>struct uprobe_task</c>:
/// whether it is held in a ptrace-stop, the program's signal held back meanwhile, and its
/// hijacked returns. Owned by the tracer thread; no other thread reads it.
/// </summary>
internal sealed class TracedThread(int tid)
{
    /// <summary>The thread's kernel id.</summary>
    public int Tid { get; } = tid;

    /// <summary>
    /// In a ptrace-stop and not continued yet. Set as soon as a stop is consumed, so that a detach
    /// after an error still finds the thread and puts it right.
    /// </summary>
    public bool Stopped { get; set; }

    /// <summary>Stopped by a SIGTRAP that has not been handled yet (so a detach after an error can still fix it up).</summary>
    public bool TrapStop { get; set; }

    /// <summary>A signal of the program's that arrived while the engine held the thread (0: none): delivered when it resumes.</summary>
    public int HeldSignal { get; set; }

    /// <summary>A vfork child: it shares the tracee's memory until it execs, so it is traced like a thread until then.</summary>
    public bool IsVforkChild { get; set; }

    /// <summary>The thread's hijacked returns, innermost last.</summary>
    public ReturnStack Returns { get; } = new();
}
