using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using Iced.Intel;

namespace ProbeGen.Uprobes;

/// <summary>
/// Native uprobes without the kernel's uprobe PMU: the engine writes the int3 itself, through
/// ptrace, and on each trap executes the displaced instruction out of line (XOL) in a scratch
/// page mapped into the tracee, relocated with Iced, so no thread ever runs the function without
/// its breakpoint. Entry probes only; every byte is restored on detach.
/// </summary>
/// <remarks>
/// ptrace requests are only valid from the thread that attached, so one dedicated thread does
/// everything: attach, patch, the wait loop, and detach. Trace processes that are not children
/// of the tracing process: a tracer that is also the parent reaps the tracee's exit, which the
/// parent's own Process object then never sees.
/// </remarks>
public sealed unsafe partial class PtraceUprobeSession : IDisposable
{
    private const int PtraceCont = 7, PtraceDetach = 17, PtraceGetRegs = 12, PtraceSetRegs = 13, PtracePeekData = 2, PtracePokeData = 5;
    private const int PtraceSingleStep = 9, PtraceSetOptions = 0x4200, PtraceSeize = 0x4206, PtraceInterrupt = 0x4207;
    private const long OptionTraceClone = 1 << 3;
    private const int Wall = 0x40000000, WNoHang = 1;
    private const int SigTrap = 5, SigStop = 19;
    private const int EventClone = 3, EventStop = 128;

    /// <summary>user_regs_struct on x86-64.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Regs
    {
        public ulong R15, R14, R13, R12, Rbp, Rbx, R11, R10, R9, R8, Rax, Rcx, Rdx, Rsi, Rdi, OrigRax, Rip, Cs, Eflags, Rsp, Ss, FsBase, GsBase, Ds, Es, Fs, Gs;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial long ptrace(long request, int pid, nint address, nint data);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int waitpid(int pid, int* status, int options);

    private sealed record Breakpoint(UprobeSpec Spec, ulong Address, ulong OriginalWord, ulong Slot, int RelocatedLength, ulong NextIp);

    private readonly int _pid;
    private readonly Action<UprobeHit> _onHit;
    private readonly Thread _tracer;
    private readonly ManualResetEventSlim _ready = new();
    private readonly HashSet<int> _threads = [];
    private readonly Dictionary<ulong, Breakpoint> _breakpoints = [];
    private readonly List<UprobeSpec> _specs;
    private Exception? _startError;

    /// <summary>True once the tracees were let go after attaching; until then they are all stopped.</summary>
    private bool _running;
    private volatile bool _stopping;
    private long _hits;

    private PtraceUprobeSession(int pid, IEnumerable<UprobeSpec> specs, Action<UprobeHit> onHit)
    {
        _pid = pid;
        _specs = specs.ToList();
        _onHit = onHit;
        _tracer = new Thread(Run) { IsBackground = true, Name = "ptrace tracer" };
    }

    /// <summary>Hits delivered.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Attaches to every thread of <paramref name="pid"/>, plants the breakpoints, and traces until disposed or the process exits.</summary>
    public static PtraceUprobeSession Start(IEnumerable<UprobeSpec> specs, int pid, Action<UprobeHit> onHit)
    {
        var session = new PtraceUprobeSession(pid, specs, onHit);
        session._tracer.Start();
        session._ready.Wait();
        if (session._startError is { } error)
        {
            session._tracer.Join();
            throw error is UprobeException ? error : new UprobeException(error.Message);
        }
        return session;
    }

    /// <summary>Completes when the traced process has exited or the session was disposed.</summary>
    public bool WaitForEnd(TimeSpan timeout) => _tracer.Join(timeout);

    /// <summary>Restores every byte and detaches from every thread.</summary>
    public void Dispose()
    {
        _stopping = true;
        _tracer.Join();
    }

    private void Run()
    {
        try
        {
            Attach();
        }
        catch (Exception ex)
        {
            _startError = ex;
            DetachAll();
            _ready.Set();
            return;
        }
        _ready.Set();
        try
        {
            Loop();
        }
        finally
        {
            DetachAll();
        }
    }

    private void Attach()
    {
        foreach (string task in Directory.GetDirectories($"/proc/{_pid}/task"))
        {
            int tid = int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture);
            if (ptrace(PtraceSeize, tid, 0, (nint)OptionTraceClone) != 0)
                throw new UprobeException($"cannot ptrace process {_pid} (errno {Marshal.GetLastPInvokeError()}): run as root, or allow it in /proc/sys/kernel/yama/ptrace_scope", environment: true);
            _threads.Add(tid);
        }
        foreach (int tid in _threads)
        {
            ptrace(PtraceInterrupt, tid, 0, 0);
            int status;
            waitpid(tid, &status, Wall);
        }
        ulong scratch = MapScratchPage();
        ulong slot = scratch;
        foreach (UprobeSpec spec in _specs)
        {
            if (spec.Return)
                throw new UprobeException($"{spec.Text}: the ptrace backend probes function entries only; use --backend perf for %return");
            string path = Path.GetFullPath(spec.Binary);
            ulong offset = spec.Offset ?? ElfSymbols.ResolveOffset(path, spec.Symbol!);
            ulong address = RuntimeAddress(path, offset);
            byte[] original = ReadBytes(address, 16);
            var decoder = Decoder.Create(64, new ByteArrayCodeReader(original));
            decoder.IP = address;
            decoder.Decode(out Instruction instruction);
            var relocated = new List<byte>();
            if (!BlockEncoder.TryEncode(64, new InstructionBlock(new ListWriter(relocated), [instruction], slot), out string? error, out _))
                throw new UprobeException($"{spec.Text}: cannot relocate '{instruction}' to the scratch page: {error}");
            int relocatedLength = relocated.Count;
            ulong next = address + (ulong)instruction.Length;
            // jmp [rip+0]; dq next: back to the instruction after the displaced one.
            relocated.AddRange([0xFF, 0x25, 0, 0, 0, 0]);
            relocated.AddRange(BitConverter.GetBytes(next));
            WriteBytes(slot, relocated.ToArray());
            ulong word = BitConverter.ToUInt64(original, 0);
            PokeWord(address, (word & ~0xFFUL) | 0xCC);
            _breakpoints[address] = new Breakpoint(spec, address, word, slot, relocatedLength, next);
            slot += (ulong)((relocated.Count + 15) & ~15);
        }
        foreach (int tid in _threads)
            ptrace(PtraceCont, tid, 0, 0);
        _running = true;
    }

    private void Loop()
    {
        var idle = new SpinWait();
        while (_threads.Count > 0 && !_stopping)
        {
            // Not blocking: Dispose must be able to end the loop, and only this thread may ptrace.
            // Only our own tracees are waited for: waitpid(-1) would steal the exit statuses of
            // the tracer process's other children from System.Diagnostics.Process.
            int tid = 0, status = 0;
            foreach (int candidate in _threads)
            {
                int s;
                if (waitpid(candidate, &s, Wall | WNoHang) == candidate)
                {
                    tid = candidate;
                    status = s;
                    break;
                }
            }
            if (tid == 0)
            {
                idle.SpinOnce(sleep1Threshold: 200);
                continue;
            }
            idle.Reset();
            if (tid < 0)
                return;
            if ((status & 0x7f) == 0 || ((status & 0x7f) != 0x7f && (status & 0x7f) != 0))
            {
                // Exited or killed.
                _threads.Remove(tid);
                continue;
            }
            int signal = (status >> 8) & 0xff;
            int ptraceEvent = status >> 16;
            if (ptraceEvent == EventClone)
            {
                nint newTid;
                ptrace(0x4201 /* PTRACE_GETEVENTMSG */, tid, 0, (nint)(&newTid));
                _threads.Add((int)newTid);
                ptrace(PtraceCont, tid, 0, 0);
                continue;
            }
            if (ptraceEvent == EventStop)
            {
                // A group-stop or a new thread's initial stop under SEIZE.
                _threads.Add(tid);
                if (_stopping)
                    return;
                ptrace(PtraceCont, tid, 0, 0);
                continue;
            }
            if (signal == SigTrap)
            {
                Regs regs;
                ptrace(PtraceGetRegs, tid, 0, (nint)(&regs));
                if (_breakpoints.TryGetValue(regs.Rip - 1, out Breakpoint? bp))
                {
                    Report(bp, tid, regs);
                    regs.Rip = bp.Slot;  // run the displaced instruction out of line
                    ptrace(PtraceSetRegs, tid, 0, (nint)(&regs));
                    ptrace(PtraceCont, tid, 0, 0);
                    continue;
                }
                ptrace(PtraceCont, tid, 0, SigTrap);
                continue;
            }
            // Any other signal belongs to the tracee: deliver it.
            ptrace(PtraceCont, tid, 0, signal == SigStop ? 0 : signal);
        }
    }

    private void Report(Breakpoint bp, int tid, Regs regs)
    {
        ReadOnlySpan<ulong> arguments = [regs.Rdi, regs.Rsi, regs.Rdx, regs.Rcx, regs.R8, regs.R9];
        object?[] values = bp.Spec.Decode(arguments, _pid);
        Interlocked.Increment(ref _hits);
        long now = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        _onHit(new UprobeHit(bp.Spec, _pid, tid, now, values));
    }

    /// <summary>Stops every thread, puts the original bytes back, moves threads out of the scratch page, and detaches.</summary>
    private void DetachAll()
    {
        if (_running)
        {
            foreach (int tid in _threads)
            {
                ptrace(PtraceInterrupt, tid, 0, 0);
                // Bounded: a thread that exits meanwhile reports its exit, not a stop.
                for (int tries = 0; tries < 1000; tries++)
                {
                    int status;
                    int got = waitpid(tid, &status, Wall | WNoHang);
                    if (got == tid || got < 0)
                        break;
                    Thread.Sleep(1);
                }
            }
        }
        foreach (Breakpoint bp in _breakpoints.Values)
            PokeWord(bp.Address, bp.OriginalWord);
        foreach (int tid in _threads)
        {
            Regs regs;
            if (ptrace(PtraceGetRegs, tid, 0, (nint)(&regs)) == 0)
            {
                foreach (Breakpoint bp in _breakpoints.Values)
                {
                    if (regs.Rip == bp.Slot)
                        regs.Rip = bp.Address;  // the displaced instruction has not run yet
                    else if (regs.Rip == bp.Slot + (ulong)bp.RelocatedLength)
                        regs.Rip = bp.NextIp;   // it has: skip the jump back
                    else if (regs.Rip == bp.Address + 1)
                        regs.Rip = bp.Address;  // trapped but not yet handled
                }
                ptrace(PtraceSetRegs, tid, 0, (nint)(&regs));
            }
            ptrace(PtraceDetach, tid, 0, 0);
        }
        _threads.Clear();
    }

    /// <summary>Maps an RWX-free scratch page (read + execute) in the tracee by running an mmap syscall in its main thread.</summary>
    private ulong MapScratchPage()
    {
        Regs saved;
        ptrace(PtraceGetRegs, _pid, 0, (nint)(&saved));
        ulong originalWord = PeekWord(saved.Rip);
        PokeWord(saved.Rip, (originalWord & ~0xFFFFUL) | 0x050F);  // syscall
        Regs call = saved;
        call.Rax = 9;           // mmap
        call.Rdi = 0;
        call.Rsi = 4096;
        call.Rdx = 5;           // PROT_READ | PROT_EXEC: the tracer writes it through ptrace
        call.R10 = 0x22;        // MAP_PRIVATE | MAP_ANONYMOUS
        call.R8 = ulong.MaxValue;
        call.R9 = 0;
        call.OrigRax = ulong.MaxValue;  // no syscall restart: the thread may have stopped inside one
        ptrace(PtraceSetRegs, _pid, 0, (nint)(&call));
        ptrace(PtraceSingleStep, _pid, 0, 0);
        int status;
        waitpid(_pid, &status, Wall);
        Regs after;
        ptrace(PtraceGetRegs, _pid, 0, (nint)(&after));
        PokeWord(saved.Rip, originalWord);
        ptrace(PtraceSetRegs, _pid, 0, (nint)(&saved));
        if ((long)after.Rax < 0 && (long)after.Rax > -4096)
            throw new UprobeException($"cannot map a scratch page in process {_pid} (errno {-(long)after.Rax})");
        return after.Rax;
    }

    private ulong RuntimeAddress(string path, ulong offset)
    {
        foreach (string line in File.ReadLines($"/proc/{_pid}/maps"))
        {
            // 55d0c7a00000-55d0c7a01000 r-xp 00001000 08:01 1234 /path
            string[] parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 6 || parts[5].Trim() != path)
                continue;
            string[] range = parts[0].Split('-');
            ulong start = ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            ulong end = ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            ulong fileOffset = ulong.Parse(parts[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (offset >= fileOffset && offset < fileOffset + (end - start))
                return start + (offset - fileOffset);
        }
        throw new UprobeException($"{path} is not mapped in process {_pid} at file offset 0x{offset:x}");
    }

    private ulong PeekWord(ulong address)
    {
        Marshal.SetLastPInvokeError(0);
        return (ulong)ptrace(PtracePeekData, _pid, (nint)address, 0);
    }

    private void PokeWord(ulong address, ulong word) => ptrace(PtracePokeData, _pid, (nint)address, (nint)word);

    private byte[] ReadBytes(ulong address, int count)
    {
        var bytes = new byte[(count + 7) & ~7];
        for (int i = 0; i < bytes.Length; i += 8)
            BitConverter.GetBytes(PeekWord(address + (ulong)i)).CopyTo(bytes, i);
        return bytes;
    }

    private void WriteBytes(ulong address, byte[] bytes)
    {
        var padded = new byte[(bytes.Length + 7) & ~7];
        bytes.CopyTo(padded, 0);
        for (int i = 0; i < padded.Length; i += 8)
            PokeWord(address + (ulong)i, BitConverter.ToUInt64(padded, i));
    }

    private sealed class ListWriter(List<byte> bytes) : CodeWriter
    {
        public override void WriteByte(byte value) => bytes.Add(value);
    }
}
