using static ProbeGen.Uprobes.Ptrace;
using static ProbeGen.Uprobes.TraceeMemory;

namespace ProbeGen.Uprobes;

/// <summary>
/// Runs a system call inside the tracee, in one of its stopped threads: the tracer places a
/// <c>syscall</c> instruction at the thread's rip, sets the arguments, single-steps it, and puts
/// back the instruction bytes and every register. The kernel does the same for itself from inside
/// the process (its xol_area's page is mapped by the task); a tracer has no other way in.
/// </summary>
/// <remarks>Used only on the tracer thread, while every thread is stopped: no other thread can run
/// the two bytes borrowed at rip meanwhile.</remarks>
internal static unsafe class TraceeSyscall
{
    public const long Mmap = 9, Munmap = 11, Close = 3, Ftruncate = 77, MemfdCreate = 319;

    /// <summary>
    /// Runs system call <paramref name="number"/> with up to six arguments (rdi, rsi, rdx, r10,
    /// r8, r9) in a stopped thread of <paramref name="tracer"/>'s process; returns rax: the result,
    /// or -errno.
    /// </summary>
    /// <exception cref="UprobeException">The process exited meanwhile, or the call did not run.</exception>
    public static long Run(PtraceTracer tracer, long number, ulong a1 = 0, ulong a2 = 0, ulong a3 = 0, ulong a4 = 0, ulong a5 = 0, ulong a6 = 0)
    {
        int tid = tracer.AnyStopped;
        Regs saved = GetRegisters(tid);
        ulong originalWord = PeekWord(tid, saved.Rip);
        PokeWord(tid, saved.Rip, (originalWord & ~0xFFFFUL) | 0x050F);  // syscall
        Regs call = saved;
        call.Rax = (ulong)number;
        call.Rdi = a1;
        call.Rsi = a2;
        call.Rdx = a3;
        call.R10 = a4;
        call.R8 = a5;
        call.R9 = a6;
        call.OrigRax = ulong.MaxValue;  // no syscall restart: the thread may have stopped inside one
        SetRegisters(tid, call);
        Regs after = default;
        for (int attempt = 0; attempt < 100; attempt++)
        {
            Call(SingleStep, tid, 0, 0);
            int raw;
            if (WaitPid(tid, &raw, Wall) != tid || !Stopped(raw))
                throw new UprobeException($"process {tracer.Pid} exited while the engine ran a system call in it");
            var status = new WaitStatus(raw);
            after = GetRegisters(tid);
            if (status.IsTrap && after.Rip == saved.Rip + 2)
                break;
            // A signal of the program's was due first: hold it for later, and step again.
            if (status.Event == 0 && status.Signal != SigTrap)
                tracer.Hold(tid, status.Signal);
        }
        PokeWord(tid, saved.Rip, originalWord);
        SetRegisters(tid, saved);
        if (after.Rip != saved.Rip + 2)
            throw new UprobeException($"cannot run system call {number} in process {tracer.Pid}: the injected instruction did not run");
        return (long)after.Rax;
    }

    /// <summary>
    /// Runs code the engine placed in the tracee at <paramref name="code"/>, in a stopped thread,
    /// with rdi and rsi set, until the int3 that ends it; then puts every register back. The code
    /// must touch only memory the engine owns and end with an int3.
    /// </summary>
    /// <exception cref="UprobeException">The code did not reach its int3 (it faulted, or the process exited).</exception>
    public static void RunCode(PtraceTracer tracer, ulong code, ulong rdi, ulong rsi)
    {
        int tid = tracer.AnyStopped;
        Regs saved = GetRegisters(tid);
        Regs call = saved;
        call.Rip = code;
        call.Rdi = rdi;
        call.Rsi = rsi;
        call.OrigRax = ulong.MaxValue;  // no syscall restart: the thread may have stopped inside one
        SetRegisters(tid, call);
        try
        {
            for (int stop = 0; stop < 100; stop++)
            {
                Call(Cont, tid, 0, 0);
                int raw;
                if (WaitPid(tid, &raw, Wall) != tid || !Stopped(raw))
                    throw new UprobeException($"process {tracer.Pid} exited while the engine ran code in it");
                var status = new WaitStatus(raw);
                if (status.IsTrap)
                    return;
                if (status.Event == 0 && status.Signal is 11 or 7 or 4)  // SIGSEGV, SIGBUS, SIGILL: ours, never the program's
                    throw new UprobeException($"the engine's code faulted in process {tracer.Pid} (signal {status.Signal})");
                // A signal of the program's: hold it for later, and go on.
                if (status.Event == 0)
                    tracer.Hold(tid, status.Signal);
            }
            throw new UprobeException($"the engine's code did not finish in process {tracer.Pid}");
        }
        finally
        {
            SetRegisters(tid, saved);
        }
    }
}
