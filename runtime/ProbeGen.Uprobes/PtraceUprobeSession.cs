using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using Iced.Intel;
using ProbeGen.Concurrency;
using static ProbeGen.Uprobes.Ptrace;

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
/// <para>ptrace requests are only valid from the thread that attached, so one dedicated thread does
/// everything: attach, patch, the wait loop, and detach.</para>
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
public sealed unsafe class PtraceUprobeSession : IUprobeSession
{
    /// <summary>Nested return probes per thread, as the kernel's uprobes limit them (MAX_URETPROBE_DEPTH); deeper returns are dropped.</summary>
    private const int MaxReturnDepth = 64;

    /// <summary>A planted breakpoint, shared by an entry and a return probe at the same place.</summary>
    private sealed record Site(UprobeKey Key, ulong Address, byte OriginalByte, ulong Slot, int RelocatedLength, ulong NextIp);

    /// <summary>A probe of this session in <see cref="UprobeRegistry"/>.</summary>
    private sealed class Probe(UprobeKey key, UprobeSpec spec, PtraceUprobeSession owner, Site site) : UprobeEntry(key, spec)
    {
        public PtraceUprobeSession Owner { get; } = owner;

        public Site Site { get; } = site;
    }

    /// <summary>
    /// A hijacked return: where the function really returns to, the stack slot that held it, and
    /// the return probe, with a reference of its own (taken at the entry trap, dropped when the
    /// return is taken or abandoned) so that a detach meanwhile cannot reclaim it.
    /// </summary>
    private readonly record struct PendingReturn(ulong ReturnAddress, ulong StackSlot, Probe Probe);

    /// <summary>
    /// Test hook: called on the tracer thread for each probe a trap has acquired, after the
    /// read-side section ended and before the probe is used, so a test can run a detach in that
    /// window. Null outside tests.
    /// </summary>
    internal static volatile Action<UprobeEntry>? TrapAcquiredForTests;

    private readonly List<UprobeSpec> _specs;

    /// <summary>Each spec's binary and file offset, resolved once before any process is touched.</summary>
    private (string Path, ulong Offset)[] _resolved = [];
    private readonly HitConsumer _consumer;
    private readonly string[]? _command;
    private readonly int _standardOutput;
    private readonly Action<int>? _onStarted;
    private readonly Action<int>? _onThreadExit;
    private readonly Thread _tracer;
    private readonly ManualResetEventSlim _ready = new();

    // Owned by the tracer thread.
    private readonly HashSet<int> _threads = [];
    private readonly HashSet<int> _vforkChildren = [];
    private readonly Dictionary<ulong, Site> _sites = [];
    private readonly List<Probe> _probes = [];
    private readonly Dictionary<int, List<PendingReturn>> _returns = [];
    private readonly HashSet<int> _stopped = [];
    /// <summary>Signals of the program's that arrived while the engine held a thread: delivered when it resumes.</summary>
    private readonly Dictionary<int, int> _heldSignals = [];

    /// <summary>Threads stopped by a SIGTRAP that has not been handled yet (so a detach after an error can still fix them up).</summary>
    private readonly HashSet<int> _trapStops = [];
    private List<Mapping> _mappings = [];
    private ulong _trampoline;
    private bool _running;

    /// <summary>Launch mode: the temporary int3 at the current image's entry point, and the byte under it (0: none armed).</summary>
    private ulong _entry;
    private byte _entryByte;

    /// <summary>The inodes of the probed binaries: an image is probed once all are mapped.</summary>
    private ulong[] _inodes = [];

    /// <summary>Whether the probes were ever planted (launch mode may end without the probed binaries ever running).</summary>
    public bool Planted { get; private set; }

    private int _pid;
    private Exception? _startError;
    private volatile bool _stopping;
    private int? _exitCode;
    private long _hits, _dropped;

    private PtraceUprobeSession(int pid, string[]? command, IEnumerable<UprobeSpec> specs, Action<UprobeHit> onHit, int standardOutput,
        Action<int>? onStarted = null, Action<int>? onThreadExit = null)
    {
        _onStarted = onStarted;
        _onThreadExit = onThreadExit;
        _pid = pid;
        _command = command;
        _specs = specs.ToList();
        _consumer = new HitConsumer(onHit);
        _standardOutput = standardOutput;
        _tracer = new Thread(Run) { IsBackground = true, Name = "ptrace tracer" };
    }

    /// <summary>The traced process.</summary>
    public int Pid => Volatile.Read(ref _pid);

    /// <summary>Hits delivered.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Return hits dropped because a thread nested more than 64 probed calls.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <inheritdoc />
    public long FaultCount => _consumer.FaultCount;

    /// <inheritdoc />
    public Exception? LastFault => _consumer.LastFault;

    /// <summary>A launched process's exit status once it has exited (128 + the signal if a signal killed it); otherwise null.</summary>
    public int? ExitCode => _exitCode;

    /// <summary>Attaches to every thread of <paramref name="pid"/>, plants the breakpoints, and traces until disposed or the process exits.</summary>
    /// <exception cref="UprobeException">A spec cannot be resolved, or the process cannot be traced (the message says why).</exception>
    public static PtraceUprobeSession Start(IEnumerable<UprobeSpec> specs, int pid, Action<UprobeHit> onHit) =>
        Begin(new PtraceUprobeSession(pid, null, specs, onHit, -1));

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
        Action<int>? onStarted = null, Action<int>? onThreadExit = null)
    {
        if (command.Count == 0)
            throw new ArgumentException("no command to launch", nameof(command));
        string program = FindExecutable(command[0]) ?? throw new UprobeException($"cannot start '{command[0]}': no such executable file");
        return Begin(new PtraceUprobeSession(0, [program, .. command.Skip(1)], specs, onHit, standardOutput, onStarted, onThreadExit));
    }

    private static PtraceUprobeSession Begin(PtraceUprobeSession session)
    {
        // Bad specs fail here, before any process is touched or started.
        session._resolved = [.. session._specs.Select(ElfSymbols.Resolve)];
        QuietChildStops();
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

    /// <summary>Restores every byte and detaches from every thread; a launched process that is still running is killed.</summary>
    public void Dispose()
    {
        _stopping = true;
        if (_tracer.Join(0))
            return;
        // The tracer blocks in waitid(P_ALL). Rather than signal the tracee (a program may block
        // every signal but SIGKILL and SIGSTOP), wake it with a state change of its own: a child
        // that exits at once. Reaped here, once the tracer has seen it.
        var wakers = new List<int>();
        do
        {
            int waker = SpawnWaker();
            if (waker > 0)
                wakers.Add(waker);
        }
        while (!_tracer.Join(wakers.Count > 0 ? 1000 : 100));
        foreach (int waker in wakers)
        {
            int status;
            WaitPid(waker, &status, 0);
        }
    }

    private void Run()
    {
        try
        {
            if (_command is not null)
            {
                SpawnToExec();
            }
            else
            {
                AttachRunning();
                if (_specs.Count > 0)
                    Plant();
            }
            foreach (int tid in _threads.ToArray())
                Continue(tid, 0);
            _running = true;
        }
        catch (Exception ex)
        {
            _startError = ex;
            Finish();
            _ready.Set();
            return;
        }
        _ready.Set();
        try
        {
            Loop();
        }
        catch (Exception ex)
        {
            // Never let the tracer thread take the process down: detach and end the session.
            LoopError = ex;
        }
        finally
        {
            Finish();
        }
    }

    /// <summary>What ended the trace early, if anything did: in launch mode, for example, a probe that could not be planted at the entry point.</summary>
    public Exception? Failure => LoopError;

    private Exception? LoopError { get; set; }

    /// <summary>
    /// Continues a stopped thread with <paramref name="signal"/>, or, when that is 0, with a signal
    /// of the program's the engine held for it (another held one is queued to it again).
    /// </summary>
    private void Continue(int tid, int signal)
    {
        _stopped.Remove(tid);
        _trapStops.Remove(tid);
        if (_heldSignals.Remove(tid, out int held))
        {
            if (signal == 0)
                signal = held;
            else if (held != signal)
                ThreadKill(tid, held);
        }
        Call(Cont, tid, 0, signal);
    }

    /// <summary>
    /// Keeps a signal of the program's that arrived while the engine held the thread, to deliver
    /// when it resumes. One is kept per thread; another is queued to the thread again, and reported again later.
    /// </summary>
    private void Hold(int tid, int signal)
    {
        if (_heldSignals.TryAdd(tid, signal))
            return;
        if (_heldSignals[tid] != signal)
            ThreadKill(tid, signal);
    }

    private void Finish()
    {
        try
        {
            DetachAll();
        }
        catch (Exception ex)
        {
            LoopError ??= ex;
        }
        if (_command is not null && _pid > 0 && _exitCode is null)
        {
            // Launched and still alive: it was started for the trace and ends with it. It is our
            // child, and no one else will reap it.
            SendSignal(_pid, SigKill);
            int status;
            if (WaitPid(_pid, &status, 0) == _pid)
                _exitCode = Ptrace.ExitCode(status);
        }
    }

    private void AttachRunning()
    {
        if (!Directory.Exists($"/proc/{_pid}"))
            throw new UprobeException($"no such process: {_pid}");
        // A thread not yet seized can start another meanwhile: list again until nothing is new.
        // (Seized ones report their clones as events.)
        bool found = true;
        while (found)
        {
            found = false;
            foreach (string task in Directory.GetDirectories($"/proc/{_pid}/task"))
            {
                int tid = int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture);
                if (_threads.Contains(tid) || IsZombie(tid))
                    continue;
                if (Call(Seize, tid, 0, (nint)(OptionTraceClone | OptionTraceFork | OptionTraceVfork | OptionTraceExec)) != 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == 3 /* ESRCH: the thread exited meanwhile */)
                        continue;
                    int tracer = errno == 1 ? TracerOf(tid) : 0;
                    if (tracer != 0 && (tracer == Environment.ProcessId || tracer == gettid()))
                    {
                        // Started by a thread seized a moment ago: already ours, its first stop is on the way.
                        _threads.Add(tid);
                        found = true;
                        continue;
                    }
                    if (tracer != 0 && Directory.Exists($"/proc/self/task/{tracer}") && WaitForRelease(tid))
                    {
                        // An earlier session of this process was still letting go of the thread: seize it again.
                        found = true;
                        continue;
                    }
                    throw new UprobeException($"cannot ptrace process {_pid} ({Marshal.GetPInvokeErrorMessage(errno)}): {PermissionHint()}", environment: true);
                }
                _threads.Add(tid);
                found = true;
            }
        }
        StopAll();
        if (_stopped.Count == 0)
            throw new UprobeException($"process {_pid} has no thread that could be stopped");
    }

    /// <summary>
    /// Interrupts every thread and collects a stop from each, handling what is reported instead
    /// of the interrupt on the way: new threads and children, exits, and signals of the program's
    /// own (kept, to be delivered when the thread resumes). A thread that does not stop within two
    /// seconds (a vfork parent waiting for its child, a zombie) is left out.
    /// </summary>
    private void StopAll()
    {
        var waiting = new HashSet<int>(_threads.Where(t => !_stopped.Contains(t)));
        foreach (int tid in waiting)
            Call(Interrupt, tid, 0, 0);
        // Continued event stops report the interrupt next; bounded, for a vfork parent that waits on.
        long deadline = Environment.TickCount64 + 2000;
        while (waiting.Count > 0 && Environment.TickCount64 < deadline)
        {
            bool progressed = false;
            foreach (int tid in waiting.ToArray())
            {
                int status;
                int got = WaitPid(tid, &status, Wall | WNoHang);
                if (got == 0)
                    continue;
                progressed = true;
                waiting.Remove(tid);
                if (got < 0 || !Stopped(status))
                {
                    Gone(tid, got == tid ? status : (int?)null);
                    continue;
                }
                int signal = (status >> 8) & 0xff, ptraceEvent = status >> 16;
                switch (ptraceEvent)
                {
                    case EventStop:
                        if (_vforkChildren.Contains(tid) && !_stopped.Contains(tid))
                        {
                            // A vfork child: its parent cannot stop until it execs or exits. Let it go on.
                            Call(Cont, tid, 0, 0);
                            waiting.Add(tid);
                            continue;
                        }
                        _stopped.Add(tid);  // the interrupt, a group-stop, or a new thread's first stop
                        continue;
                    case 0:
                        _stopped.Add(tid);
                        if (signal == SigTrap && OwnsTrap(tid))
                            _trapStops.Add(tid);
                        else
                            Hold(tid, signal);  // a signal-delivery-stop: the program's signal
                        continue;
                    case EventClone:
                        int thread = (int)EventMessage(tid);
                        if (_threads.Add(thread))
                            waiting.Add(thread);  // its first stop comes by itself
                        break;
                    case EventFork:
                        LetForkedChildGo(tid, (int)EventMessage(tid));
                        break;
                    case EventVfork:
                        int child = (int)EventMessage(tid);
                        _threads.Add(child);
                        _vforkChildren.Add(child);
                        waiting.Add(child);
                        break;
                    case EventExec:
                        if (_vforkChildren.Remove(tid))
                        {
                            _threads.Remove(tid);
                            Call(Detach, tid, 0, 0);
                            continue;
                        }
                        OnExec(tid);
                        break;
                }
                // An event stop is inside a system call, no place to run code in: continue it to
                // the interrupt, which stops it on its way back to user space.
                Call(Cont, tid, 0, 0);
                waiting.Add(tid);
            }
            if (!progressed)
                Thread.Sleep(1);
        }
    }

    /// <summary>A tracee that exited or was killed.</summary>
    private void Gone(int tid, int? status)
    {
        _threads.Remove(tid);
        _stopped.Remove(tid);
        _trapStops.Remove(tid);
        _vforkChildren.Remove(tid);
        if (_returns.Remove(tid, out List<PendingReturn>? pending))
            AbandonReturns(pending);
        _heldSignals.Remove(tid);
        if (tid == _pid && status is { } s)
            _exitCode = Ptrace.ExitCode(s);
    }

    /// <summary>
    /// The traced process ran execve (from any thread: the kernel gives the leader's id to the
    /// thread that ran it, and every other thread is gone). Launch mode arms the new image's entry point.
    /// </summary>
    private void OnExec(int tid)
    {
        ForgetImage();
        int former = (int)EventMessage(tid);
        foreach (int gone in _threads.Where(t => t != tid && !_vforkChildren.Contains(t)).ToArray())
            Gone(gone, null);
        if (former != tid)
            Gone(former, null);
        _threads.Add(tid);
        if (_command is not null && _inodes.Length > 0)
        {
            _entry = EntryPoint(tid);
            _entryByte = PlantByte(tid, _entry);
        }
    }

    /// <summary>The traced process replaced its image: its breakpoints and trampolines went with the old one.</summary>
    private void ForgetImage()
    {
        _entry = 0;
        foreach (Probe probe in _probes)
            UprobeRegistry.Probes.Remove(probe);
        _probes.Clear();
        _sites.Clear();
        AbandonAllReturns();
        _trampoline = 0;
    }

    private static bool IsZombie(int tid)
    {
        try
        {
            // "pid (comm) S ...": the state follows the last ')'.
            string stat = File.ReadAllText($"/proc/{tid}/stat");
            char state = stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault();
            return state is 'Z' or 'X';
        }
        catch (IOException)
        {
            return true;
        }
    }

    /// <summary>
    /// Spawns the command, seized, to its exec, and arms its entry point with a temporary int3.
    /// The probes go in when a thread reaches it: the dynamic loader has then mapped every needed
    /// library and none of the program's own code has run. An image that does not map the probed
    /// binaries (a wrapper such as env) is left to run, and the next one's entry is armed.
    /// </summary>
    private void SpawnToExec()
    {
        long options = OptionTraceClone | OptionTraceFork | OptionTraceVfork | OptionTraceExec | OptionExitKill | (_onThreadExit is null ? 0 : OptionTraceExit);
        _inodes = _resolved.Select(r => Native.Inode(r.Path)).Distinct().ToArray();
        int pid = LaunchToExec(_command!, _standardOutput, options,
            started => Volatile.Write(ref _pid, started), out int? exitCode);
        _exitCode = exitCode;
        if (pid < 0)
            throw new UprobeException($"'{_command![0]}' exited with status {_exitCode} before it started");
        _threads.Add(pid);
        _stopped.Add(pid);
        _onStarted?.Invoke(pid);
        if (_inodes.Length > 0)
        {
            _entry = EntryPoint(pid);
            _entryByte = PlantByte(pid, _entry);
        }
    }

    /// <summary>A thread reached the armed entry point: plant the probes if this image maps the probed binaries.</summary>
    private void OnEntry(int tid, Regs regs)
    {
        RestoreByte(tid, _entry, _entryByte);
        regs.Rip = _entry;
        Call(SetRegs, tid, 0, (nint)(&regs));
        _entry = 0;
        var mapped = ReadMappings(tid).Select(m => m.Inode).ToHashSet();
        if (_inodes.All(mapped.Contains))
        {
            Plant();  // at an entry point the process has this one thread, stopped here
            Planted = true;
        }
    }

    /// <summary>
    /// With every thread stopped: maps scratch pages, relocates each displaced instruction into
    /// one, registers each probe, then writes the int3s. A module's page is mapped within 2 GB of
    /// it when it can be, so relocated branches and RIP-relative operands keep their 32-bit form.
    /// </summary>
    private void Plant()
    {
        _mappings = ReadMappings(_pid);
        var pages = new Dictionary<ulong, (ulong Page, ulong Next)>();
        foreach (var (spec, (path, offset)) in _specs.Zip(_resolved))
        {
            ulong address = RuntimeAddress(_mappings, _pid, path, offset);
            Mapping mapping = _mappings.First(m => address >= m.Start && address < m.End);
            if (!_sites.TryGetValue(address, out Site? site))
            {
                if (!pages.TryGetValue(mapping.Inode, out var page))
                {
                    ulong low = _mappings.Where(m => m.Inode == mapping.Inode).Min(m => m.Start);
                    ulong high = _mappings.Where(m => m.Inode == mapping.Inode).Max(m => m.End);
                    ulong mapped = MapScratchPage(low, high);
                    page = (mapped, mapped + 16);
                    if (_trampoline == 0)
                    {
                        // The return trampoline: an int3 that threads reach by returning from a probed function.
                        _trampoline = mapped;
                        WriteBytes(AnyStopped, _trampoline, [0xCC]);
                    }
                }
                byte[] original = ReadBytes(AnyStopped, address, 16);
                var decoder = Decoder.Create(64, new ByteArrayCodeReader(original));
                decoder.IP = address;
                decoder.Decode(out Instruction instruction);
                if (instruction.IsInvalid)
                    throw new UprobeException($"{spec.Text}: no valid instruction at file offset 0x{offset:x}");
                bool near = (long)(page.Next - address) is > -0x7000_0000 and < 0x7000_0000;
                if (!near && (instruction.FlowControl != FlowControl.Next || instruction.IsIPRelativeMemoryOperand))
                    throw new UprobeException($"{spec.Text}: '{instruction}' cannot run out of line: no scratch page could be mapped within 2 GB of {path}");
                var relocated = new List<byte>();
                if (!BlockEncoder.TryEncode(64, new InstructionBlock(new ListWriter(relocated), [instruction], page.Next), out string? error, out _))
                    throw new UprobeException($"{spec.Text}: cannot relocate '{instruction}' to the scratch page: {error}");
                int relocatedLength = relocated.Count;
                ulong next = address + (ulong)instruction.Length;
                // jmp [rip+0]; dq next: back to the instruction after the displaced one.
                relocated.AddRange([0xFF, 0x25, 0, 0, 0, 0]);
                relocated.AddRange(BitConverter.GetBytes(next));
                if (page.Next + (ulong)relocated.Count > page.Page + 4096)
                    throw new UprobeException($"too many probes in {path} for one scratch page");
                WriteBytes(AnyStopped, page.Next, relocated.ToArray());
                site = new Site(new UprobeKey(mapping.Device, mapping.Inode, offset, false), address, original[0], page.Next, relocatedLength, next);
                _sites[address] = site;
                pages[mapping.Inode] = (page.Page, page.Next + (ulong)((relocated.Count + 15) & ~15));
            }
            var probe = new Probe(site.Key with { Return = spec.Return }, spec, this, site);
            if (!UprobeRegistry.Probes.TryAdd(probe))
                throw new UprobeException($"{spec.Text} is already attached in this process");
            _probes.Add(probe);
        }
        // Registered first, then planted: a trap can only come from a probe the registry knows.
        foreach (Site site in _sites.Values)
            PlantByte(AnyStopped, site.Address);
        Planted = true;
    }

    /// <summary>Writes an int3 over one byte (sites may lie closer together than a word) and returns the byte it replaced.</summary>
    private static byte PlantByte(int tid, ulong address)
    {
        ulong word = PeekWord(tid, address);
        PokeWord(tid, address, (word & ~0xFFUL) | 0xCC);
        return (byte)word;
    }

    private static void RestoreByte(int tid, ulong address, byte original)
    {
        ulong word = PeekWord(tid, address);
        PokeWord(tid, address, (word & ~0xFFUL) | original);
    }

    private void Loop()
    {
        while (_threads.Count > 0 && !_stopping)
        {
            int tid = WaitAnyNoReap();
            if (tid < 0)
                return;  // ECHILD: nothing is left
            if (!_threads.Contains(tid))
            {
                // A child of this process that is not ours (a Process object's, say) has exited:
                // its owner reaps it soon. Until then waitid keeps reporting it, so look at ours directly.
                if (!PollOwn())
                    Thread.Sleep(1);
                continue;
            }
            int status;
            if (WaitPid(tid, &status, Wall | WNoHang) == tid)
                Consume(tid, status);
        }
    }

    /// <summary>Handles one reported state change. Until the thread is continued it counts as stopped, so a detach after an error still finds it.</summary>
    private void Consume(int tid, int status)
    {
        if (Stopped(status))
        {
            _stopped.Add(tid);
            if ((status >> 16) == 0 && ((status >> 8) & 0xff) == SigTrap)
                _trapStops.Add(tid);
        }
        Handle(tid, status);
    }

    /// <summary>Consumes one pending state change of one of our tracees, if there is one.</summary>
    private bool PollOwn()
    {
        foreach (int tid in _threads)
        {
            int status;
            if (WaitPid(tid, &status, Wall | WNoHang) == tid)
            {
                Consume(tid, status);
                return true;
            }
        }
        return false;
    }

    private void Handle(int tid, int status)
    {
        if (!Stopped(status))
        {
            Gone(tid, status);  // exited or killed
            return;
        }
        int signal = (status >> 8) & 0xff, ptraceEvent = status >> 16;
        switch (ptraceEvent)
        {
            case EventClone:
                _threads.Add((int)EventMessage(tid));
                Continue(tid, 0);
                return;
            case EventFork:
                LetForkedChildGo(tid, (int)EventMessage(tid));
                Continue(tid, 0);
                return;
            case EventVfork:
                // Shares our tracee's memory, breakpoints and all, until it execs: trace it like a thread.
                int child = (int)EventMessage(tid);
                _threads.Add(child);
                _vforkChildren.Add(child);
                Continue(tid, 0);
                return;
            case EventExec:
                if (_vforkChildren.Remove(tid))
                {
                    // A fresh image with no breakpoints of ours.
                    _threads.Remove(tid);
                    _stopped.Remove(tid);
                    Call(Detach, tid, 0, 0);
                    return;
                }
                // The traced process replaced its image: the breakpoints went with the old one.
                // Keep following it; in launch mode the new image's entry is armed.
                OnExec(tid);
                Continue(tid, 0);
                return;
            case EventExit:
                _onThreadExit?.Invoke(tid);
                Continue(tid, 0);
                return;
            case EventStop:
                // A group-stop, or a new thread's first stop under SEIZE.
                _threads.Add(tid);
                Continue(tid, 0);
                return;
        }
        if (signal == SigTrap && OnTrap(tid))
            return;
        // Any other signal belongs to the tracee: deliver it.
        Continue(tid, signal == SigStop ? 0 : signal);
    }

    /// <summary>Handles a SIGTRAP; false when it was not one of ours.</summary>
    private bool OnTrap(int tid)
    {
        Regs regs;
        Call(GetRegs, tid, 0, (nint)(&regs));
        ulong at = regs.Rip - 1;
        if (_entry != 0 && at == _entry)
        {
            OnEntry(tid, regs);
            Continue(tid, 0);
            return true;
        }
        if (_trampoline != 0 && at == _trampoline)
        {
            if (!TakeReturn(tid, regs.Rsp, report: true, regs, out ulong returnAddress))
                return false;
            regs.Rip = returnAddress;
            Call(SetRegs, tid, 0, (nint)(&regs));
            Continue(tid, 0);
            return true;
        }
        if (!TryKey(at, out UprobeKey key))
            return false;
        Probe? entry = Acquire(key), exit = Acquire(key with { Return = true });
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
    private Probe? Acquire(UprobeKey key)
    {
        if (!UprobeRegistry.Probes.TryAcquire(key, out UprobeEntry? found))
            return null;
        if (found is Probe probe && probe.Owner == this)
            return probe;
        found!.Release();  // another session's probe at the same place
        return null;
    }

    /// <summary>A trap at a probed place; <paramref name="entry"/> and <paramref name="exit"/> are referenced by the caller.</summary>
    private bool OnProbeTrap(int tid, ulong at, Regs regs, Probe? entry, Probe? exit)
    {
        Site? site = entry?.Site ?? exit?.Site;
        if (site is not null && site.Address != at)
            site = null;  // the same file mapped again elsewhere: not the breakpoint we planted
        if (site is null)
        {
            // Not registered (any more). If the int3 is gone too, a detach raced with this trap:
            // run the restored instruction, as the kernel's uprobes do. Otherwise it is the program's own int3.
            if ((PeekWord(tid, at) & 0xFF) == 0xCC)
                return false;
            regs.Rip = at;
            SetRegisters(tid, regs);
            Continue(tid, 0);
            return true;
        }
        if (entry is not null)
            Report(entry.Spec, tid, [regs.Rdi, regs.Rsi, regs.Rdx, regs.Rcx, regs.R8, regs.R9]);
        if (exit is not null)
            HijackReturn(tid, regs.Rsp, exit);
        regs.Rip = site.Slot;  // run the displaced instruction out of line
        SetRegisters(tid, regs);
        Continue(tid, 0);
        return true;
    }

    private static void SetRegisters(int tid, Regs regs) => Call(SetRegs, tid, 0, (nint)(&regs));

    /// <summary>At a probed function's entry, [rsp] is the return address: swap in the trampoline.</summary>
    private void HijackReturn(int tid, ulong rsp, Probe probe)
    {
        if (!_returns.TryGetValue(tid, out List<PendingReturn>? pending))
            _returns[tid] = pending = [];
        ulong returnAddress = PeekWord(tid, rsp);
        // A longjmp or an exception may have skipped returns: drop the frames the stack has left.
        // An entry for this very slot is live only if the slot still holds the trampoline (a tail
        // call); if a call has written a real return address there, that frame is gone too.
        while (pending.Count > 0 && (pending[^1].StackSlot < rsp || (pending[^1].StackSlot == rsp && returnAddress != _trampoline)))
            PopReturn(pending).Probe.Release();
        if (pending.Count >= MaxReturnDepth)
        {
            Interlocked.Increment(ref _dropped);
            return;
        }
        // Already the trampoline: a tail call from another probed function. That one's entry holds
        // the real address, and both report when the shared return runs.
        if (!probe.TryAddRef())
            return;  // cannot fail: the trap holds a reference
        if (returnAddress != _trampoline)
            PokeWord(tid, rsp, _trampoline);
        pending.Add(new PendingReturn(returnAddress, rsp, probe));
    }

    private static PendingReturn PopReturn(List<PendingReturn> pending)
    {
        PendingReturn top = pending[^1];
        pending.RemoveAt(pending.Count - 1);
        return top;
    }

    /// <summary>Drops the references of returns that will never be taken (the thread or the image is gone, or the session detached).</summary>
    private static void AbandonReturns(List<PendingReturn> pending)
    {
        foreach (PendingReturn p in pending)
            p.Probe.Release();
        pending.Clear();
    }

    private void AbandonAllReturns()
    {
        foreach (List<PendingReturn> pending in _returns.Values)
            AbandonReturns(pending);
        _returns.Clear();
    }

    /// <summary>
    /// A thread returned to the trampoline (the ret popped the slot, so the slot is rsp - 8): reports
    /// each probed function that returned through that slot, and finds where to resume.
    /// </summary>
    private bool TakeReturn(int tid, ulong rsp, bool report, Regs regs, out ulong returnAddress)
    {
        returnAddress = 0;
        if (!_returns.TryGetValue(tid, out List<PendingReturn>? pending))
            return false;
        ulong slot = rsp - 8;
        while (pending.Count > 0 && pending[^1].StackSlot < slot)
            PopReturn(pending).Probe.Release();  // skipped by a longjmp
        while (pending.Count > 0 && pending[^1].StackSlot == slot)
        {
            PendingReturn top = PopReturn(pending);
            try
            {
                if (report)
                    Report(top.Probe.Spec, tid, [regs.Rax]);
            }
            finally
            {
                top.Probe.Release();
            }
            if (top.ReturnAddress != _trampoline)
                returnAddress = top.ReturnAddress;
        }
        return returnAddress != 0;
    }

    private void Report(UprobeSpec spec, int tid, ReadOnlySpan<ulong> registers)
    {
        Span<ulong> raw = stackalloc ulong[UprobeSpec.MaxArguments];
        for (int i = 0; i < spec.Types.Count; i++)
            raw[i] = spec.Return ? registers[0] : registers[i];
        object?[] values = spec.Decode(raw, new StringSource(tid));
        Interlocked.Increment(ref _hits);
        long now = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        _consumer.Deliver(new UprobeHit(spec, _pid, tid, now, values));
    }

    /// <summary>
    /// A forked child starts traced, with a private copy of our tracee's memory: breakpoints and
    /// hijacked return addresses included. Put the copy back as it was and let the child go.
    /// </summary>
    private void LetForkedChildGo(int parentTid, int child)
    {
        int status;
        WaitPid(child, &status, Wall);  // its first stop under SEIZE
        foreach (Site site in _sites.Values)
            RestoreByte(child, site.Address, site.OriginalByte);
        Regs regs;
        if (_returns.TryGetValue(parentTid, out List<PendingReturn>? pending) && Call(GetRegs, child, 0, (nint)(&regs)) == 0)
        {
            ulong rsp = regs.Rsp;
            // Only slots of frames still live on its stack, still holding the trampoline: after a
            // longjmp a stale slot may hold a local variable by now.
            foreach (PendingReturn p in pending.Where(p => p.ReturnAddress != _trampoline && p.StackSlot >= rsp))
                if (PeekWord(child, p.StackSlot) == _trampoline)
                    PokeWord(child, p.StackSlot, p.ReturnAddress);
        }
        Call(Detach, child, 0, 0);
    }

    /// <summary>
    /// Stops every thread, unregisters the probes, puts the original bytes and return addresses
    /// back, moves threads out of the scratch page, and detaches.
    /// </summary>
    private void DetachAll()
    {
        var trapped = new HashSet<int>();
        if (_running)
        {
            StopAll();
            foreach (int tid in _stopped.ToArray())
            {
                if (!_trapStops.Contains(tid) && _heldSignals.GetValueOrDefault(tid) != SigTrap && SigTrapPending(tid))
                {
                    // It executed an int3, but the interrupt was reported first and the SIGTRAP is
                    // still queued: detached, it would kill the thread. Let the thread take it now
                    // (synchronous signals are dequeued first, so this stop is the SIGTRAP).
                    _heldSignals.Remove(tid, out int held);
                    bool alive = true, trap = false;
                    for (int step = 0; step < 8 && alive && !trap; step++)
                    {
                        Call(Cont, tid, 0, 0);
                        int status;
                        if (WaitPid(tid, &status, Wall) != tid || !Stopped(status))
                        {
                            Gone(tid, status);
                            alive = false;
                            break;
                        }
                        int signal = (status >> 8) & 0xff, ptraceEvent = status >> 16;
                        trap = ptraceEvent == 0 && signal == SigTrap;
                        if (ptraceEvent == 0 && !trap)
                        {
                            // Another of the program's signals came first: keep it, and go on to the trap.
                            if (held == 0)
                                held = signal;
                            else
                                ThreadKill(tid, signal);
                        }
                    }
                    if (!alive)
                        continue;
                    if (held != 0)
                        _heldSignals[tid] = held;  // the program's signal, still delivered on detach
                    if (trap)
                        _trapStops.Add(tid);
                }
                if (_trapStops.Contains(tid))
                {
                    if (OwnsTrap(tid))
                        trapped.Add(tid);
                    else
                        Hold(tid, SigTrap);  // the program's own int3: it gets its SIGTRAP
                }
            }
        }
        foreach (Probe probe in _probes)
            UprobeRegistry.Probes.Remove(probe);
        _probes.Clear();
        if (_stopped.Count > 0)
        {
            foreach (Site site in _sites.Values)
                RestoreByte(AnyStopped, site.Address, site.OriginalByte);
        }
        foreach (int tid in _stopped)
        {
            Regs regs;
            if (Call(GetRegs, tid, 0, (nint)(&regs)) == 0)
            {
                if (_trampoline != 0 && (regs.Rip == _trampoline || (trapped.Contains(tid) && regs.Rip == _trampoline + 1)))
                {
                    // Returned from a probed function and not resumed yet: resume at the real return address.
                    if (TakeReturn(tid, regs.Rsp, report: regs.Rip == _trampoline + 1, regs, out ulong returnAddress))
                        regs.Rip = returnAddress;
                }
                foreach (Site site in _sites.Values)
                {
                    if (regs.Rip == site.Slot)
                        regs.Rip = site.Address;  // the displaced instruction has not run yet
                    else if (regs.Rip == site.Slot + (ulong)site.RelocatedLength)
                        regs.Rip = site.NextIp;   // it has: skip the jump back
                    else if (trapped.Contains(tid) && regs.Rip == site.Address + 1)
                        regs.Rip = site.Address;  // trapped, not handled: run the restored instruction
                    else
                        continue;
                    // (Without a trap, address + 1 is where a one-byte instruction such as push rbp
                    // continues after running out of line: nothing to do.)
                    break;
                }
                Call(SetRegs, tid, 0, (nint)(&regs));
            }
            // Return addresses still swapped for the trampoline go back to the real ones.
            if (_returns.TryGetValue(tid, out List<PendingReturn>? pending))
                foreach (PendingReturn p in pending.Where(p => p.ReturnAddress != _trampoline))
                    if (PeekWord(tid, p.StackSlot) == _trampoline)
                        PokeWord(tid, p.StackSlot, p.ReturnAddress);
            Call(Detach, tid, 0, _heldSignals.GetValueOrDefault(tid));
        }
        if (_stopped.Count > 0)
        {
            // Threads that never stopped (a vfork parent waiting for its child) share the memory:
            // their swapped return addresses go back through a thread that did.
            foreach (var (tid, pending) in _returns.Where(r => !_stopped.Contains(r.Key)))
                foreach (PendingReturn p in pending.Where(p => p.ReturnAddress != _trampoline))
                    if (PeekWord(AnyStopped, p.StackSlot) == _trampoline)
                        PokeWord(AnyStopped, p.StackSlot, p.ReturnAddress);
        }
        _threads.Clear();
        _stopped.Clear();
        _trapStops.Clear();
        AbandonAllReturns();
        _heldSignals.Clear();
    }

    /// <summary>A field of /proc/TID/status ("TracerPid:", "Tgid:", "SigPnd:"), or null if it cannot be read.</summary>
    private static string? StatusField(int tid, string field)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{tid}/status"))
                if (line.StartsWith(field, StringComparison.Ordinal))
                    return line[field.Length..].Trim();
        }
        catch (IOException)
        {
        }
        return null;
    }

    private static int StatusNumber(int tid, string field) =>
        int.TryParse(StatusField(tid, field), NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) ? value : -1;

    private static int TracerOf(int tid) => StatusNumber(tid, "TracerPid:");

    /// <summary>Waits up to two seconds for another tracer thread of this process to detach from <paramref name="tid"/>.</summary>
    private static bool WaitForRelease(int tid)
    {
        for (int i = 0; i < 400; i++)
        {
            int tracer = TracerOf(tid);
            if (tracer <= 0)
                return true;
            Thread.Sleep(5);
        }
        return false;
    }

    [DllImport("libc", SetLastError = false)]
    private static extern int gettid();

    /// <summary>Queues a signal to one thread again (tgkill).</summary>
    private static void ThreadKill(int tid, int signal) => Ptrace.ThreadKill(StatusNumber(tid, "Tgid:"), tid, signal);

    /// <summary>Whether a SIGTRAP is queued for the thread (its SigPnd mask).</summary>
    private static bool SigTrapPending(int tid) =>
        ulong.TryParse(StatusField(tid, "SigPnd:"), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong pending)
        && (pending & (1UL << (SigTrap - 1))) != 0;

    /// <summary>Whether a thread stopped by SIGTRAP stopped at one of our breakpoints or the trampoline.</summary>
    private bool OwnsTrap(int tid)
    {
        Regs regs;
        Call(GetRegs, tid, 0, (nint)(&regs));
        return regs.Rip - 1 == _trampoline || _sites.ContainsKey(regs.Rip - 1);
    }

    private static string PermissionHint()
    {
        string scope;
        try
        {
            scope = File.ReadAllText("/proc/sys/kernel/yama/ptrace_scope").Trim();
        }
        catch (IOException)
        {
            scope = "absent";
        }
        return $"run as root or with CAP_SYS_PTRACE, or trace a process of your own user with /proc/sys/kernel/yama/ptrace_scope at 0 or 1 (now {scope})";
    }

    private static ulong EventMessage(int tid)
    {
        ulong message;
        Call(GetEventMsg, tid, 0, (nint)(&message));
        return message;
    }

    /// <summary>
    /// Maps a read + execute scratch page in the tracee, within 2 GB of the module at
    /// [<paramref name="low"/>, <paramref name="high"/>) when it can (MAP_FIXED_NOREPLACE, trying
    /// pages just below it, then above it), anywhere otherwise.
    /// </summary>
    private ulong MapScratchPage(ulong low, ulong high)
    {
        const ulong page = 4096;
        foreach (ulong distance in new ulong[] { 1, 16, 256, 4096, 65536 })
        {
            foreach (ulong hint in new[] { low - distance * page, (high + page - 1) / page * page + (distance - 1) * page })
            {
                if (hint < 0x10000 || hint >= 0x7fff_ffff_0000)
                    continue;
                long got = InjectMmap(hint, 0x100000 /* MAP_FIXED_NOREPLACE */);
                if (got == (long)hint)
                    return hint;
                if (got > 0)
                    return (ulong)got;  // a kernel before 4.17 takes the hint as a hint; near or not, it is mapped
            }
        }
        long anywhere = InjectMmap(0, 0);
        if (anywhere < 0)
            throw new UprobeException($"cannot map a scratch page in process {_pid} (errno {-anywhere})");
        return (ulong)anywhere;
    }

    /// <summary>
    /// Runs mmap(hint, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | flags) in a
    /// stopped thread by placing a syscall instruction at its rip and single-stepping it. Returns
    /// the address, or -errno.
    /// </summary>
    private long InjectMmap(ulong hint, ulong flags)
    {
        int tid = AnyStopped;
        Regs saved;
        Call(GetRegs, tid, 0, (nint)(&saved));
        ulong originalWord = PeekWord(tid, saved.Rip);
        PokeWord(tid, saved.Rip, (originalWord & ~0xFFFFUL) | 0x050F);  // syscall
        Regs call = saved;
        call.Rax = 9;           // mmap
        call.Rdi = hint;
        call.Rsi = 4096;
        call.Rdx = 5;           // PROT_READ | PROT_EXEC: the tracer writes it through ptrace
        call.R10 = 0x22 | flags; // MAP_PRIVATE | MAP_ANONYMOUS
        call.R8 = ulong.MaxValue;
        call.R9 = 0;
        call.OrigRax = ulong.MaxValue;  // no syscall restart: the thread may have stopped inside one
        Call(SetRegs, tid, 0, (nint)(&call));
        Regs after = default;
        for (int attempt = 0; attempt < 100; attempt++)
        {
            Call(SingleStep, tid, 0, 0);
            int status;
            if (WaitPid(tid, &status, Wall) != tid || !Stopped(status))
                throw new UprobeException($"process {_pid} exited while a scratch page was being mapped");
            int signal = (status >> 8) & 0xff, ptraceEvent = status >> 16;
            Call(GetRegs, tid, 0, (nint)(&after));
            if (signal == SigTrap && ptraceEvent == 0 && after.Rip == saved.Rip + 2)
                break;
            // A signal of the program's was due first: hold it for later, and step again.
            if (ptraceEvent == 0 && signal != SigTrap)
                Hold(tid, signal);
        }
        PokeWord(tid, saved.Rip, originalWord);
        Call(SetRegs, tid, 0, (nint)(&saved));
        if (after.Rip != saved.Rip + 2)
            throw new UprobeException($"cannot map a scratch page in process {_pid}: the injected syscall did not run");
        long result = (long)after.Rax;
        return result < 0 || (result & 0xFFF) != 0 ? (result < 0 ? result : -22) : result;
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
            _mappings = ReadMappings(_pid);  // mapped since we looked (a dlopen, say)
        }
        key = default;
        return false;
    }

    /// <summary>A stopped thread to read and write memory through: ptrace reaches memory only through a tracee in a ptrace-stop.</summary>
    private int AnyStopped => _stopped.Contains(_pid) ? _pid : _stopped.First();

    // Memory is read and written through a thread that is in a ptrace-stop; all threads share it.
    private static ulong PeekWord(int tid, ulong address) => (ulong)Call(PeekData, tid, (nint)address, 0);

    private static void PokeWord(int tid, ulong address, ulong word) => Call(PokeData, tid, (nint)address, (nint)word);

    private static byte[] ReadBytes(int tid, ulong address, int count)
    {
        var bytes = new byte[(count + 7) & ~7];
        for (int i = 0; i < bytes.Length; i += 8)
            BitConverter.GetBytes(PeekWord(tid, address + (ulong)i)).CopyTo(bytes, i);
        return bytes;
    }

    private static void WriteBytes(int tid, ulong address, byte[] bytes)
    {
        var padded = new byte[(bytes.Length + 7) & ~7];
        bytes.CopyTo(padded, 0);
        for (int i = 0; i < padded.Length; i += 8)
            PokeWord(tid, address + (ulong)i, BitConverter.ToUInt64(padded, i));
    }

    private sealed class ListWriter(List<byte> bytes) : CodeWriter
    {
        public override void WriteByte(byte value) => bytes.Add(value);
    }
}
