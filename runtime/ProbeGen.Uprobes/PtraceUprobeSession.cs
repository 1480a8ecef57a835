using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using static ProbeGen.Uprobes.Ptrace;
using static ProbeGen.Uprobes.TraceeMemory;

namespace ProbeGen.Uprobes;

/// <summary>
/// Native uprobes without the kernel's uprobe PMU. The engine writes the int3 itself, through
/// ptrace. On each trap it looks the probe up by (device, inode, offset) in the shared lock-free registry
/// and runs the displaced instruction out of line (XOL) in a scratch page mapped into the tracee,
/// relocated with Iced, so no thread ever runs the function without its breakpoint. Return probes
/// swap the return address for a trampoline (an int3 in the scratch page). Every byte is restored
/// on detach.
/// </summary>
/// <remarks>
/// <para>This class is the facade and the trap handler, like the kernel's <c>handle_swbp</c>: the
/// tracer loop is <see cref="PtraceTracer"/>, each thread's state a <see cref="TracedThread"/>, the
/// int3s <see cref="Breakpoints"/>, the scratch pages <see cref="XolArea"/>, the relocation
/// <see cref="InstructionRelocation"/>, and the hijacked returns a <see cref="ReturnStack"/>. All of
/// it runs on the tracer thread, the only one ptrace accepts requests from.</para>
/// <para>Forked children are not traced: their copies of the breakpoints and return addresses are
/// restored and they are let go. A vfork child shares the tracee's memory, so it is traced like
/// one of its threads until it execs. A <c>dlopen</c>ed library is not probed if it is loaded
/// after the breakpoints are planted.</para>
/// <para>Starting a session sets SA_NOCLDSTOP on this process's SIGCHLD handler, keeping the
/// handler: otherwise every trap, a ptrace-stop, would also signal the process (in a .NET process
/// that has started a child, the runtime then wakes to look for exited children). Exits are still signalled.</para>
/// <para>When attaching with <see cref="Start"/>, do not trace a child of this process that a
/// <see cref="System.Diagnostics.Process"/> owns: a tracer that is also the parent reaps the
/// tracee's exit, which the Process object then never sees. <see cref="Launch"/> starts its own
/// child, which only the session reaps.</para>
/// </remarks>
public sealed unsafe class PtraceUprobeSession : IUprobeSession, ITracerClient
{
    /// <summary>
    /// Test hook: called on the tracer thread for each probe a trap has acquired, after the
    /// read-side section ended and before the probe is used, so a test can run a detach in that
    /// window. Null outside tests.
    /// </summary>
    internal static volatile Action<UprobeEntry>? TrapAcquiredForTests;

    private readonly List<UprobeSpec> _specs;

    /// <summary>Each spec's binary and file offset, resolved once before any process is touched.</summary>
    private readonly (string Path, ulong Offset)[] _resolved;

    private readonly HitConsumer _consumer;
    private readonly PtraceTracer _tracer;

    // Owned by the tracer thread.
    private readonly Breakpoints _breakpoints = new();
    private List<Mapping> _mappings = [];

    /// <summary>Launch mode: the temporary int3 at the image's entry point; armed only when the probed binaries are known.</summary>
    private readonly LaunchEntry _entry;

    private long _hits, _dropped;

    private PtraceUprobeSession(TracerOptions options, IEnumerable<UprobeSpec> specs, Action<UprobeHit> onHit)
    {
        _specs = specs.ToList();
        // Bad specs fail here, before any process is touched or started.
        _resolved = [.. _specs.Select(ElfSymbols.Resolve)];
        _entry = new LaunchEntry(options.Command is null ? [] : _resolved.Select(r => Native.Inode(r.Path)).Distinct().ToArray());
        _consumer = new HitConsumer(onHit);
        _tracer = new PtraceTracer(options, this);
    }

    /// <summary>Whether the probes were ever planted (launch mode may end without the probed binaries ever running).</summary>
    public bool Planted { get; private set; }

    /// <inheritdoc />
    public UprobeBackend Backend => UprobeBackend.Ptrace;

    /// <summary>The traced process.</summary>
    public int Pid => _tracer.Pid;

    /// <summary>Hits delivered.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Return hits dropped because a thread nested more than 64 probed calls.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <inheritdoc />
    public long FaultCount => _consumer.FaultCount;

    /// <inheritdoc />
    public Exception? LastFault => _consumer.LastFault;

    /// <summary>A launched process's exit status once it has exited (128 + the signal if a signal killed it); otherwise null.</summary>
    public int? ExitCode => _tracer.ExitCode;

    /// <summary>What ended the trace early, if anything did: in launch mode, for example, a probe that could not be planted at the entry point.</summary>
    public Exception? Failure => _tracer.Failure;

    /// <summary>Attaches to every thread of <paramref name="pid"/>, plants the breakpoints, and traces until disposed or the process exits.</summary>
    /// <exception cref="UprobeException">A spec cannot be resolved, or the process cannot be traced (the message says why).</exception>
    public static PtraceUprobeSession Start(IEnumerable<UprobeSpec> specs, int pid, Action<UprobeHit> onHit) =>
        Begin(new PtraceUprobeSession(new TracerOptions(pid, null), specs, onHit));

    /// <summary>
    /// Starts <paramref name="command"/> traced from its first instruction: the breakpoints are
    /// planted at the program's entry point, once its shared libraries are loaded and before any
    /// of its own code runs. Tracing ends when the process exits (see <see cref="ExitCode"/>);
    /// disposing the session earlier detaches and kills it.
    /// </summary>
    /// <param name="specs">The probes.</param>
    /// <param name="command">The program and its arguments, looked up on PATH like a shell does.</param>
    /// <param name="onHit">Called on the tracer thread for each hit, while the hitting thread waits.</param>
    /// <param name="standardOutput">A file descriptor of this process to become the program's standard output; -1 shares ours.</param>
    /// <param name="onStarted">Called with the pid at the program's exec, before it (or its dynamic loader) runs anything.</param>
    /// <param name="onThreadExit">
    /// Called on the tracer thread as each thread of the program exits, while the thread and the
    /// process's memory still exist (PTRACE_EVENT_EXIT); the thread waits until it returns.
    /// </param>
    /// <exception cref="UprobeException">A spec cannot be resolved, or the program cannot be started.</exception>
    public static PtraceUprobeSession Launch(IEnumerable<UprobeSpec> specs, IReadOnlyList<string> command, Action<UprobeHit> onHit, int standardOutput = -1,
        Action<int>? onStarted = null, Action<int>? onThreadExit = null) =>
        Begin(new PtraceUprobeSession(new TracerOptions(0, ProgramLauncher.Resolve(command), standardOutput, onStarted, onThreadExit), specs, onHit));

    private static PtraceUprobeSession Begin(PtraceUprobeSession session)
    {
        session._tracer.Start();
        return session;
    }

    /// <summary>Completes when the traced process has exited or the session was disposed.</summary>
    public bool WaitForEnd(TimeSpan timeout) => _tracer.WaitForEnd(timeout);

    /// <summary>Restores every byte and detaches from every thread; a launched process that is still running is killed.</summary>
    public void Dispose() => _tracer.Dispose();

    void ITracerClient.OnAttached(int tid)
    {
        if (_tracer.Launched)
            _entry.Arm(tid);
        else if (_specs.Count > 0)
            Plant();
    }

    /// <summary>With every thread stopped: plants every probe (see <see cref="Breakpoints.Plant"/>).</summary>
    private void Plant()
    {
        _mappings = ReadMappings(_tracer.Pid);
        _breakpoints.Plant(_tracer, this, _specs, _resolved, _mappings);
        Planted = true;
    }

    /// <summary>The traced process replaced its image: its breakpoints and trampolines went with the old one. Launch mode arms the new image's entry point.</summary>
    void ITracerClient.OnExec(int tid)
    {
        _entry.Forget();
        _breakpoints.ForgetImage();
        foreach (TracedThread thread in _tracer.Threads)
            thread.Returns.Abandon();
        if (_tracer.Launched)
            _entry.Arm(tid);
    }

    /// <summary>Whether a thread stopped by SIGTRAP stopped at one of our breakpoints or the trampoline.</summary>
    bool ITracerClient.OwnsTrap(int tid)
    {
        Regs regs = GetRegisters(tid);
        return regs.Rip - 1 == _breakpoints.Trampoline || _breakpoints.Contains(regs.Rip - 1);
    }

    /// <summary>Handles a SIGTRAP; false when it was not one of ours.</summary>
    bool ITracerClient.OnTrap(int tid)
    {
        Regs regs = GetRegisters(tid);
        ulong at = regs.Rip - 1;
        if (_entry.IsAt(at))
        {
            if (_entry.Reached(tid, regs))
                Plant();  // at an entry point the process has this one thread, stopped here
            _tracer.Continue(tid, 0);
            return true;
        }
        ulong trampoline = _breakpoints.Trampoline;
        if (trampoline != 0 && at == trampoline)
        {
            if (!TakeReturn(tid, regs, report: true, out ulong returnAddress))
                return false;
            regs.Rip = returnAddress;
            SetRegisters(tid, regs);
            _tracer.Continue(tid, 0);
            return true;
        }
        if (!TryKey(at, out UprobeKey key))
            return false;
        BreakpointProbe? entry = Acquire(key), exit = Acquire(key with { Return = true });
        try
        {
            if (TrapAcquiredForTests is { } hook)
            {
                if (entry is not null)
                    hook(entry);
                if (exit is not null)
                    hook(exit);
            }
            return OnProbeTrap(tid, at, regs, entry, exit);
        }
        finally
        {
            entry?.Release();
            exit?.Release();
        }
    }

    /// <summary>
    /// find_uprobe() at a trap: inside the read-side section, only the lookup and "increment if not
    /// zero". The trap then uses the probe under that reference, after the section has ended. A
    /// detach may remove the probe at any moment: if its removal dropped the last reference first,
    /// the increment fails and the trap sees no probe; if the trap's increment came first, the probe
    /// lives until the trap releases it, and only then is its reclamation queued.
    /// </summary>
    private BreakpointProbe? Acquire(UprobeKey key)
    {
        if (!UprobeRegistry.Probes.TryAcquire(key, out UprobeEntry? found))
            return null;
        if (found is BreakpointProbe probe && probe.Owner == this)
            return probe;
        found!.Release();  // another session's probe at the same place
        return null;
    }

    /// <summary>A trap at a probed place; <paramref name="entry"/> and <paramref name="exit"/> are referenced by the caller.</summary>
    private bool OnProbeTrap(int tid, ulong at, Regs regs, BreakpointProbe? entry, BreakpointProbe? exit)
    {
        Breakpoint? breakpoint = entry?.Breakpoint ?? exit?.Breakpoint;
        if (breakpoint is not null && breakpoint.Address != at)
            breakpoint = null;  // the same file mapped again elsewhere: not the breakpoint we planted
        if (breakpoint is null)
        {
            // Not registered (any more). If the int3 is gone too, a detach raced with this trap:
            // run the restored instruction, as the kernel's uprobes do. Otherwise it is the program's own int3.
            if ((PeekWord(tid, at) & 0xFF) == 0xCC)
                return false;
            regs.Rip = at;
            SetRegisters(tid, regs);
            _tracer.Continue(tid, 0);
            return true;
        }
        if (entry is not null)
            Report(entry.Spec, tid, [regs.Rdi, regs.Rsi, regs.Rdx, regs.Rcx, regs.R8, regs.R9]);
        if (exit is not null && !_tracer.Find(tid)!.Returns.Hijack(tid, regs.Rsp, exit, _breakpoints.Trampoline))
            Interlocked.Increment(ref _dropped);
        regs.Rip = breakpoint.Slot;  // run the displaced instruction out of line
        SetRegisters(tid, regs);
        _tracer.Continue(tid, 0);
        return true;
    }

    /// <summary>A thread at the trampoline: reports (when <paramref name="report"/>) each function that returned, and finds where to resume.</summary>
    private bool TakeReturn(int tid, Regs regs, bool report, out ulong returnAddress)
    {
        returnAddress = 0;
        if (_tracer.Find(tid) is not { } thread)
            return false;
        Action<BreakpointProbe>? onReturn = report ? probe => Report(probe.Spec, tid, [regs.Rax]) : null;
        return thread.Returns.Take(regs.Rsp, _breakpoints.Trampoline, onReturn, out returnAddress);
    }

    private void Report(UprobeSpec spec, int tid, ReadOnlySpan<ulong> registers)
    {
        Span<ulong> raw = stackalloc ulong[UprobeSpec.MaxArguments];
        for (int i = 0; i < spec.Types.Count; i++)
            raw[i] = spec.Return ? registers[0] : registers[i];
        object?[] values = spec.Decode(raw, new StringSource(tid));
        Interlocked.Increment(ref _hits);
        long now = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        _consumer.Deliver(new UprobeHit(spec, _tracer.Pid, tid, now, values));
    }

    /// <summary>
    /// A forked child has a private copy of our tracee's memory: breakpoints and hijacked return
    /// addresses included. Put the copy back as it was.
    /// </summary>
    void ITracerClient.OnForkedChild(int parentTid, int child)
    {
        _breakpoints.RestoreAll(child);
        // Only slots of frames still live on its stack: below rsp they are gone.
        if (_tracer.Find(parentTid) is { } parent && TryGetRegisters(child, out Regs regs))
            parent.Returns.Restore(child, _breakpoints.Trampoline, lowestSlot: regs.Rsp);
    }

    /// <summary>Unregisters the probes and, with a thread to write through, puts the original bytes back.</summary>
    void ITracerClient.PrepareDetach()
    {
        _breakpoints.Unregister();
        if (_tracer.AnyThreadStopped)
            _breakpoints.RestoreAll(_tracer.AnyStopped);
    }

    /// <summary>Moves a thread out of the scratch page and puts its swapped return addresses back.</summary>
    void ITracerClient.PrepareThreadDetach(int tid, bool trapped)
    {
        ulong trampoline = _breakpoints.Trampoline;
        if (TryGetRegisters(tid, out Regs regs))
        {
            if (trampoline != 0 && (regs.Rip == trampoline || (trapped && regs.Rip == trampoline + 1)))
            {
                // Returned from a probed function and not resumed yet: resume at the real return address.
                if (TakeReturn(tid, regs, report: regs.Rip == trampoline + 1, out ulong returnAddress))
                    regs.Rip = returnAddress;
            }
            foreach (Breakpoint breakpoint in _breakpoints.All)
            {
                if (regs.Rip == breakpoint.Slot)
                    regs.Rip = breakpoint.Address;  // the displaced instruction has not run yet
                else if (regs.Rip == breakpoint.Slot + (ulong)breakpoint.RelocatedLength)
                    regs.Rip = breakpoint.NextIp;   // it has: skip the jump back
                else if (trapped && regs.Rip == breakpoint.Address + 1)
                    regs.Rip = breakpoint.Address;  // trapped, not handled: run the restored instruction
                else
                    continue;
                // (Without a trap, address + 1 is where a one-byte instruction such as push rbp
                // continues after running out of line: nothing to do.)
                break;
            }
            SetRegisters(tid, regs);
        }
        // Return addresses still swapped for the trampoline go back to the real ones.
        _tracer.Find(tid)?.Returns.Restore(tid, trampoline);
    }

    /// <summary>
    /// Threads that never stopped (a vfork parent waiting for its child) share the memory: their
    /// swapped return addresses go back through a thread that did.
    /// </summary>
    void ITracerClient.FinishDetach()
    {
        if (!_tracer.AnyThreadStopped)
            return;
        foreach (TracedThread thread in _tracer.Threads.Where(t => !t.Stopped))
            thread.Returns.Restore(_tracer.AnyStopped, _breakpoints.Trampoline);
    }

    /// <summary>The registry key of a trap address: the inode and file offset it maps, as the kernel's find_active_uprobe computes it.</summary>
    private bool TryKey(ulong address, out UprobeKey key)
    {
        for (int attempt = 0; attempt < 2; attempt++)
        {
            foreach (Mapping m in _mappings)
            {
                if (address >= m.Start && address < m.End)
                {
                    key = new UprobeKey(m.Device, m.Inode, m.FileOffset + (address - m.Start), false);
                    return true;
                }
            }
            _mappings = ReadMappings(_tracer.Pid);  // mapped since we looked (a dlopen, say)
        }
        key = default;
        return false;
    }
}
