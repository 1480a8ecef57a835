using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Iced.Intel;
using static ProbeGen.Uprobes.Ptrace;
using static ProbeGen.Uprobes.TraceeMemory;

namespace ProbeGen.Uprobes.Jump;

/// <summary>
/// Native probes without a trap: each probed function's entry becomes a 5-byte jump to a
/// trampoline mapped near its module, which records the hit in a ring in the target's memory and
/// goes on. The tracer only stops the threads to patch and to restore; between the two it drains
/// the ring and never touches the running target.
/// </summary>
/// <remarks>
/// <para>The ring is a memfd that the target and the tracer both map (<see cref="JumpRingMemory"/>):
/// the drainer reads and frees records with plain loads and stores, no system call per drain, and
/// what the target wrote stays readable after it has exited.</para>
/// <para>Before any jump is written, a thread stopped inside the bytes it replaces is single-stepped
/// out, and a thread blocked in a system call that would return there, or with a word on its stack
/// that points there (a return address, a signal frame's saved rip), refuses the attach
/// (<see cref="PatchWindows"/>).</para>
/// <para>Refused here, with the reason: <c>%return</c> probes (a return needs a trap or a second
/// trampoline; use perf or ptrace), raw offsets (no symbol size to check branches against), more
/// than one string per probe (a record holds one), and every entry <see cref="JumpSite"/> refuses.</para>
/// <para>A process that ptrace attached to keeps running if the tracer dies: the trampolines go on
/// writing into the ring until it is full, and count the rest as dropped. A launched program dies
/// with its tracer, as it does on the ptrace backend.</para>
/// </remarks>
public sealed unsafe class JumpUprobeSession : IUprobeSession, ITracerClient
{
    /// <summary>Records the ring holds: 8 MB.</summary>
    private const int RingCapacity = 1 << 16;

    /// <summary>Bytes reserved for one trampoline in the trampoline area.</summary>
    private const int TrampolineBytes = 512;

    /// <summary>The most probes one session patches.</summary>
    private const int MaxProbes = 64;

    /// <summary>
    /// The head of each trampoline area: a magic word, the site count, the ring's address and size,
    /// then each site's address and original bytes, so a later session can undo the jumps of one
    /// whose tracer was killed, and unmap what it mapped. (<see cref="AreaMagicV1"/>: the same
    /// without the ring, from before the ring was a memfd.)
    /// </summary>
    private const ulong AreaMagic = 0x32_706D_6A67_7270;  // "prgjmp2" little-endian
    private const ulong AreaMagicV1 = 0x31_706D_6A67_7270;  // "prgjmp1"
    private const int AreaHeaderBytes = 32 + MaxProbes * 16;

    private readonly List<UprobeSpec> _specs;
    private readonly (string Path, ulong Offset)[] _resolved;
    private readonly ulong[] _sizes;
    /// <summary>The argument register each spec's string is in, or -1.</summary>
    private readonly int[] _stringRegisters;
    private readonly HitConsumer _consumer;
    private readonly PtraceTracer _tracer;
    private readonly XolArea _area;
    private readonly Thread _drainer;
    private readonly TscClock _clock = new();

    // Written on the tracer thread while every thread is stopped.
    private readonly List<Site> _sites = [];

    /// <summary>The trampoline areas mapped in the target. Only the tracer thread uses it.</summary>
    private readonly List<(ulong Start, ulong Size)> _areas = [];

    /// <summary>The ring, once planted. Set and cleared under <see cref="_drainLock"/> (tracer thread); used by the drain under it.</summary>
    private JumpRingMemory? _ringMemory;

    /// <summary>The next ticket to read: the consumer's own copy of the ring's tail. Only the drain, under <see cref="_drainLock"/>, uses it.</summary>
    private long _tail;
    private volatile bool _stopping;

    /// <summary>Launch mode: the temporary int3 at the image's entry point.</summary>
    private readonly LaunchEntry _entry;

    private long _hits, _malformed, _ringDropped;
    private readonly Lock _drainLock = new();

    private sealed record Site(ulong Address, byte[] Original, ulong Area, ulong Trampoline, int Length);

    private JumpUprobeSession(TracerOptions options, IEnumerable<UprobeSpec> specs, HitConsumer consumer)
    {
        _specs = specs.ToList();
        if (_specs.Count > MaxProbes)
            throw new UprobeException($"the jump backend patches at most {MaxProbes} functions at once");
        foreach (UprobeSpec spec in _specs)
        {
            if (spec.Return)
                throw new UprobeException($"{spec.Text}: the jump backend takes entry probes only; a %return probe needs a trap at the return (use --backend perf or ptrace)");
            if (spec.Symbol is null)
                throw new UprobeException($"{spec.Text}: the jump backend needs a function name, whose symbol size bounds the check for branches into the patched bytes (use --backend perf or ptrace for an offset)");
            if (spec.Types.Count(t => t == ArgType.Str) > 1)
                throw new UprobeException($"{spec.Text}: the jump backend copies one string per hit; ask for one str argument (or use --backend perf)");
        }
        _resolved = [.. _specs.Select(ElfSymbols.Resolve)];
        _sizes = [.. _specs.Zip(_resolved).Select(p => ElfSymbols.FunctionSize(p.Second.Path, p.First.Symbol!))];
        _stringRegisters = [.. _specs.Select(s => s.Types.ToList().IndexOf(ArgType.Str))];
        _entry = new LaunchEntry(options.Command is null ? [] : _resolved.Select(r => Native.Inode(r.Path)).Distinct().ToArray());
        _consumer = consumer;
        _tracer = new PtraceTracer(options, this);
        _area = new XolArea(_tracer);
        _drainer = new Thread(DrainLoop) { IsBackground = true, Name = "jump ring drainer" };
    }

    /// <inheritdoc />
    public UprobeBackend Backend => UprobeBackend.Jump;

    /// <summary>Jumps left by an earlier session whose tracer died, found and undone when this one attached.</summary>
    /// <inheritdoc />
    public int LeftoversRemoved { get; private set; }

    /// <summary>Threads that were stopped inside the bytes a jump replaces and were single-stepped out before it was written.</summary>
    internal int ThreadsSteppedOut { get; private set; }

    /// <inheritdoc />
    public bool Planted { get; private set; }

    /// <summary>The traced process.</summary>
    public int Pid => _tracer.Pid;

    /// <inheritdoc />
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Hits the ring had no room for, plus records that did not decode.</summary>
    public long Dropped => Interlocked.Read(ref _ringDropped) + Interlocked.Read(ref _malformed);

    /// <inheritdoc />
    public long FaultCount => _consumer.FaultCount;

    /// <inheritdoc />
    public Exception? LastFault => _consumer.LastFault;

    /// <inheritdoc />
    public int? ExitCode => _tracer.ExitCode;

    /// <inheritdoc />
    public Exception? Failure => _tracer.Failure;

    /// <summary>Attaches to every thread of <paramref name="pid"/>, patches the functions, and records until disposed or the process exits.</summary>
    /// <exception cref="UprobeException">A spec is refused, or the process cannot be traced or patched (the message says why).</exception>
    public static JumpUprobeSession Start(IEnumerable<UprobeSpec> specs, int pid, Action<UprobeHit> onHit) =>
        Begin(new JumpUprobeSession(new TracerOptions(pid, null), specs, new HitConsumer(onHit)));

    /// <summary>
    /// <see cref="Start(IEnumerable{UprobeSpec}, int, Action{UprobeHit})"/> for a consumer that takes
    /// each hit in place, with nothing allocated per hit (for counting and aggregation).
    /// </summary>
    /// <exception cref="UprobeException">A spec is refused, or the process cannot be traced or patched (the message says why).</exception>
    public static JumpUprobeSession Start(IEnumerable<UprobeSpec> specs, int pid, RawUprobeHitHandler onRawHit) =>
        Begin(new JumpUprobeSession(new TracerOptions(pid, null), specs, new HitConsumer(onRawHit)));

    /// <summary>Starts <paramref name="command"/> and patches the functions at its entry point, once its libraries are loaded.</summary>
    /// <exception cref="UprobeException">A spec is refused, or the program cannot be started.</exception>
    public static JumpUprobeSession Launch(IEnumerable<UprobeSpec> specs, IReadOnlyList<string> command, Action<UprobeHit> onHit, int standardOutput = -1) =>
        Begin(new JumpUprobeSession(new TracerOptions(0, ProgramLauncher.Resolve(command), standardOutput), specs, new HitConsumer(onHit)));

    /// <summary>
    /// <see cref="Launch(IEnumerable{UprobeSpec}, IReadOnlyList{string}, Action{UprobeHit}, int)"/> for a
    /// consumer that takes each hit in place, with nothing allocated per hit (for counting and aggregation).
    /// </summary>
    /// <exception cref="UprobeException">A spec is refused, or the program cannot be started.</exception>
    public static JumpUprobeSession Launch(IEnumerable<UprobeSpec> specs, IReadOnlyList<string> command, RawUprobeHitHandler onRawHit, int standardOutput = -1) =>
        Begin(new JumpUprobeSession(new TracerOptions(0, ProgramLauncher.Resolve(command), standardOutput), specs, new HitConsumer(onRawHit)));

    private static JumpUprobeSession Begin(JumpUprobeSession session)
    {
        session._tracer.Start();
        session._drainer.Start();
        return session;
    }

    /// <inheritdoc />
    public bool WaitForEnd(TimeSpan timeout) => _tracer.WaitForEnd(timeout);

    /// <summary>Stops every thread, moves any out of a trampoline, restores every byte, drains the ring and detaches.</summary>
    public void Dispose()
    {
        _tracer.Dispose();
        _stopping = true;
        _drainer.Join();  // its last drain reads what the target wrote up to the detach (or its exit)
        lock (_drainLock)
        {
            _ringMemory?.Dispose();
            _ringMemory = null;
        }
    }

    void ITracerClient.OnAttached(int tid)
    {
        if (_tracer.Launched)
            _entry.Arm(tid);
        else
            Plant();
    }

    bool ITracerClient.OwnsTrap(int tid) => _entry.IsAt(GetRegisters(tid).Rip - 1);

    bool ITracerClient.OnTrap(int tid)
    {
        Regs regs = GetRegisters(tid);
        if (!_entry.IsAt(regs.Rip - 1))
            return false;
        if (_entry.Reached(tid, regs))
            Plant();  // at an entry point the process has this one thread, stopped here
        _tracer.Continue(tid, 0);
        return true;
    }

    void ITracerClient.OnExec(int tid)
    {
        // The patched image is gone, and with it the trampolines and the target's mapping of the
        // ring; ours still holds what was written before the exec.
        _entry.Forget();
        _areas.Clear();
        lock (_drainLock)
        {
            _sites.Clear();
            while (Drain() > 0)
            {
            }
            _ringMemory?.Dispose();
            _ringMemory = null;
        }
        if (_tracer.Launched)
            _entry.Arm(tid);
    }

    /// <summary>A forked child's copy of memory has the jumps too: it would record into its own copy of the ring, which nobody reads. Restore its code.</summary>
    void ITracerClient.OnForkedChild(int parentTid, int child)
    {
        foreach (Site site in _sites)
            WriteExact(child, site.Address, site.Original);
    }

    /// <summary>
    /// Restores every byte, moves every thread out of the trampolines (one instruction at a time,
    /// until it is back in the function's own code), then unmaps the trampoline areas and the
    /// ring in the target if nothing can lead into them any more.
    /// </summary>
    void ITracerClient.PrepareDetach()
    {
        if (!_tracer.AnyThreadStopped)
            return;
        int tid = _tracer.AnyStopped;
        foreach (Site site in _sites)
            WriteExact(tid, site.Address, site.Original);
        foreach (TracedThread thread in _tracer.Threads.Where(t => t.Stopped).ToArray())
            StepOutOfTrampolines(thread.Tid);
        try
        {
            UnmapInTarget();
        }
        catch (UprobeException)
        {
            // The process is going away: its mappings go with it.
        }
    }

    private void StepOutOfTrampolines(int tid)
    {
        for (int step = 0; step < 10_000 && TryGetRegisters(tid, out Regs regs) && InTrampoline(regs.Rip); step++)
        {
            Call(SingleStep, tid, 0, 0);
            int raw;
            if (WaitPid(tid, &raw, Wall) != tid || !Stopped(raw))
                return;
            var status = new WaitStatus(raw);
            if (status.Event == 0 && status.Signal != SigTrap)
                _tracer.Hold(tid, status.Signal);
        }
    }

    /// <summary>
    /// With every jump undone: unmaps the trampoline areas and the ring in the target, only if no
    /// thread can come back into a trampoline. That takes every thread stopped (one that could not
    /// be may be inside one), none with its rip in an area, and none with a word on its stack that
    /// points into one (a signal handler that interrupted a trampoline returns into it). Otherwise
    /// they stay mapped, unused: a leak, never a crash.
    /// </summary>
    private void UnmapInTarget()
    {
        bool InArea(ulong address) => _areas.Any(a => address >= a.Start && address < a.Start + a.Size);
        if (_areas.Count == 0
            || _tracer.Threads.Any(t => !t.Stopped)
            || _tracer.Threads.Any(t => TryGetRegisters(t.Tid, out Regs regs) && InArea(regs.Rip))
            || PatchWindows.FindOnStacks(_tracer, InArea) is not null)
            return;
        foreach (var (start, size) in _areas)
            TraceeSyscall.Run(_tracer, TraceeSyscall.Munmap, start, size);
        _areas.Clear();
        // No trampoline is left to write into the ring.
        _ringMemory?.UnmapInTarget(_tracer);
    }

    /// <summary>Nothing per thread: <see cref="ITracerClient.PrepareDetach"/> moved every thread out of the trampolines before the areas were unmapped.</summary>
    void ITracerClient.PrepareThreadDetach(int tid, bool trapped)
    {
    }

    void ITracerClient.FinishDetach()
    {
    }

    private bool InTrampoline(ulong rip) => _sites.Any(s => rip >= s.Trampoline && rip < s.Trampoline + (ulong)s.Length);

    /// <summary>With every thread stopped: checks every function, then maps the ring and the trampolines and writes the jumps.</summary>
    private void Plant()
    {
        int pid = _tracer.Pid;
        int tid = _tracer.AnyStopped;
        List<Mapping> mappings = ReadMappings(pid);
        LeftoversRemoved += RemoveLeftovers(tid, pid);
        var planned = new List<(int Index, ulong Address, IReadOnlyList<Instruction> Displaced, Mapping Module)>();
        for (int i = 0; i < _specs.Count; i++)
        {
            UprobeSpec spec = _specs[i];
            (string path, ulong offset) = _resolved[i];
            ulong address = RuntimeAddress(mappings, pid, path, offset);
            if (_sizes[i] is 0 or > 1 << 20)
                throw new UprobeException($"{spec.Text}: the symbol gives no size for the function; use --backend perf or ptrace");
            byte[] code = ReadBytes(tid, address, (int)_sizes[i]);
            IReadOnlyList<Instruction> displaced = JumpSite.Analyze(code, address, spec.Text);
            // A call that ends the window returns to its end, where the original code goes on; one
            // before it would return into the jump's bytes for a thread already inside the callee.
            if (displaced.Take(displaced.Count - 1).Any(d => d.FlowControl is FlowControl.Call or FlowControl.IndirectCall))
                throw new UprobeException($"{spec.Text}: a call among the first {JumpSite.PatchLength} bytes would return into them; use --backend perf or ptrace");
            if (planned.Any(p => p.Address == address))
                throw new UprobeException($"{spec.Text}: the function is already probed by another spec of this session");
            planned.Add((i, address, displaced, mappings.First(m => address >= m.Start && address < m.End)));
        }
        if (planned.Count == 0)
            return;
        // No thread may resume in the middle of a jump: each is stepped out of the bytes, or refused.
        var windows = planned.Select(p => new PatchWindow(p.Address, p.Displaced[^1].NextIP, _specs[p.Index].Text)).ToList();
        ThreadsSteppedOut += PatchWindows.StepThreadsOut(_tracer, windows);
        PatchWindows.CheckStacks(_tracer, windows);

        int threadIdOffset = FindThreadIdOffset();
        var groups = planned.GroupBy(p => p.Module.Inode).Select(group =>
        {
            ulong low = mappings.Where(m => m.Inode == group.Key).Min(m => m.Start);
            ulong high = mappings.Where(m => m.Inode == group.Key).Max(m => m.End);
            ulong size = (ulong)((AreaHeaderBytes + group.Count() * TrampolineBytes + 4095) & ~4095);
            return (Area: _area.MapNear(low, high, size, XolArea.ProtReadExec), Size: size, Probes: group.ToList());
        }).ToList();
        _areas.AddRange(groups.Select(g => (g.Area, g.Size)));
        // The first area's head, written below, lends its bytes to the memfd's name meanwhile.
        JumpRingMemory ringMemory = JumpRingMemory.Create(_tracer, RingCapacity, groups[0].Area);
        ulong ring = ringMemory.TargetAddress;
        var sites = new List<Site>();
        foreach (var (area, _, probes) in groups)
        {
            ulong next = area + AreaHeaderBytes;
            foreach (var (index, address, displaced, _) in probes)
            {
                if ((long)(next - address) is < -0x7FFF_0000 or > 0x7FFF_0000)
                    throw new UprobeException($"{_specs[index].Text}: no memory could be mapped within 2 GB of {_resolved[index].Path} for its trampoline; use --backend perf or ptrace");
                var plan = new TrampolinePlan(ring, RingCapacity, (uint)index, threadIdOffset, _stringRegisters[index], pid, displaced, displaced[^1].NextIP, SaveFlags: false,
                    Registers: _specs[index].Types.Count);
                byte[] trampoline = JumpTrampoline.Emit(plan, next);
                if (trampoline.Length > TrampolineBytes)
                    throw new UprobeException($"{_specs[index].Text}: its trampoline takes {trampoline.Length} bytes, more than {TrampolineBytes}");
                WriteBytes(tid, next, trampoline);
                sites.Add(new Site(address, ReadBytes(tid, address, JumpSite.PatchLength)[..JumpSite.PatchLength], area, next, trampoline.Length));
                next += TrampolineBytes;
            }
        }
        // Each area's head names its sites, before any jump exists that a later session might need to undo.
        foreach (var area in sites.GroupBy(s => s.Area))
        {
            var head = new List<byte>();
            head.AddRange(BitConverter.GetBytes(AreaMagic));
            head.AddRange(BitConverter.GetBytes((long)area.Count()));
            head.AddRange(BitConverter.GetBytes(ringMemory.TargetAddress));
            head.AddRange(BitConverter.GetBytes(ringMemory.Size));
            foreach (Site site in area)
            {
                head.AddRange(BitConverter.GetBytes(site.Address));
                head.AddRange([.. site.Original, 0, 0, 0]);
            }
            WriteBytes(tid, area.Key, [.. head]);
        }
        // Every trampoline is in place before any jump to one is written.
        foreach (Site site in sites)
        {
            long displacement = (long)site.Trampoline - (long)(site.Address + JumpSite.PatchLength);
            WriteExact(tid, site.Address, [0xE9, .. BitConverter.GetBytes((int)displacement)]);
        }
        lock (_drainLock)
        {
            _sites.AddRange(sites);
            _ringMemory?.Dispose();  // an earlier image's, drained at its exec
            _ringMemory = ringMemory;
            _tail = 0;
        }
        Planted = true;
    }

    /// <summary>
    /// With every thread stopped: finds the trampoline areas of earlier sessions (by their head),
    /// puts back the original bytes of every site whose jump into that area is still there, then
    /// unmaps the areas and their ring when nothing leads into them any more (as
    /// <see cref="UnmapInTarget"/> decides for this session's own); otherwise they stay, and a
    /// thread inside one finishes through it.
    /// </summary>
    /// <returns>How many jumps were undone.</returns>
    private int RemoveLeftovers(int tid, int pid)
    {
        int removed = 0;
        var areas = new List<(ulong Start, ulong End, ulong Ring, ulong RingSize)>();
        foreach (var m in AnonymousExecutableMappings(pid))
        {
            ulong magic = PeekWord(tid, m.Start);
            if (magic is not (AreaMagic or AreaMagicV1))
                continue;
            long count = (long)PeekWord(tid, m.Start + 8);
            if (count is <= 0 or > MaxProbes)
                continue;
            ulong sitesAt = magic == AreaMagic ? 32UL : 16UL;
            for (int i = 0; i < count; i++)
            {
                ulong address = PeekWord(tid, m.Start + sitesAt + (ulong)i * 16);
                byte[] original = BitConverter.GetBytes(PeekWord(tid, m.Start + sitesAt + 8 + (ulong)i * 16))[..JumpSite.PatchLength];
                byte[] now = ReadBytes(tid, address, JumpSite.PatchLength);
                long target = (long)address + JumpSite.PatchLength + BitConverter.ToInt32(now, 1);
                if (now[0] == 0xE9 && (ulong)target >= m.Start && (ulong)target < m.End)
                {
                    WriteExact(tid, address, original);
                    removed++;
                }
            }
            // Done: a later session will not undo these sites again.
            PokeWord(tid, m.Start, 0);
            areas.Add(magic == AreaMagic ? (m.Start, m.End, PeekWord(tid, m.Start + 16), PeekWord(tid, m.Start + 24)) : (m.Start, m.End, 0, 0));
        }
        // One killed session's areas share its ring: all of them must be unused before it goes.
        foreach (var session in areas.GroupBy(a => a.Ring))
        {
            bool InArea(ulong address) => session.Any(a => address >= a.Start && address < a.End);
            if (_tracer.Threads.Any(t => !t.Stopped)
                || _tracer.Threads.Any(t => TryGetRegisters(t.Tid, out Regs regs) && InArea(regs.Rip))
                || PatchWindows.FindOnStacks(_tracer, InArea) is not null)
                continue;
            foreach (var area in session)
                TraceeSyscall.Run(_tracer, TraceeSyscall.Munmap, area.Start, area.End - area.Start);
            // Only what /proc/PID/maps shows as a jump ring at that address: the head is the target's memory.
            var (ring, size) = (session.Key, session.First().RingSize);
            if (ring != 0 && System.IO.File.ReadLines($"/proc/{pid}/maps").Any(l => l.StartsWith($"{ring:x}-", StringComparison.Ordinal) && l.Contains("/memfd:" + JumpRingMemory.Name, StringComparison.Ordinal)))
                TraceeSyscall.Run(_tracer, TraceeSyscall.Munmap, ring, size);
        }
        return removed;
    }

    /// <summary>The process's executable mappings of no file, of at most 1 MB: where trampoline areas live.</summary>
    private static IEnumerable<(ulong Start, ulong End)> AnonymousExecutableMappings(int pid)
    {
        foreach (string line in System.IO.File.ReadLines($"/proc/{pid}/maps"))
        {
            string[] parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 5 || parts[1].Length < 3 || parts[1][2] != 'x')
                continue;
            string[] range = parts[0].Split('-');
            ulong start = Convert.ToUInt64(range[0], 16), end = Convert.ToUInt64(range[1], 16);
            if (end - start <= 1 << 20)
                yield return (start, end);
        }
    }

    /// <summary>
    /// The thread id's offset in the thread control block: from two stopped threads of the target
    /// or more, else this process's offset if the target's thread agrees with it (a program at its
    /// entry point has one thread); -1 (ask the kernel on every hit) when neither holds.
    /// </summary>
    private int FindThreadIdOffset()
    {
        var threads = _tracer.Threads.Where(t => t.Stopped).Take(4)
            .Select(t => (t.Tid, Block: TryGetRegisters(t.Tid, out Regs regs) ? regs.FsBase : 0UL))
            .Where(t => t.Block != 0)
            .ToList();
        if (threads.Count == 0)
            return -1;
        int via = _tracer.AnyStopped;
        var readers = threads.Select(t => (t.Tid, (Func<int, int?>)(offset => (int)(uint)PeekWord(via, t.Block + (ulong)offset)))).ToArray();
        if (threads.Count >= 2)
            return ThreadIdOffset.Find(readers);
        int ours = ThreadIdOffset.FindInThisProcess();
        return ours >= 0 && readers.All(r => r.Item2(ours) == r.Tid) ? ours : -1;
    }

    /// <summary>
    /// Drains what has arrived, then sleeps a millisecond: reading records while the target writes
    /// the next ones would move their cache lines between the two cores on every hit. The ring
    /// holds 64k records, so a millisecond's pause is room for 64M hits per second.
    /// </summary>
    private void DrainLoop()
    {
        while (!_stopping)
        {
            while (Drain() > 0 && !_stopping)
            {
            }
            Thread.Sleep(1);
        }
        while (Drain() > 0)
        {
        }
    }

    /// <summary>Delivers every complete record in the shared ring and frees their slots; returns how many.</summary>
    private int Drain()
    {
        lock (_drainLock)
        {
            byte* ring = _ringMemory is null ? null : _ringMemory.Ring;
            if (ring == null)
                return 0;
            var delivery = new Delivery(this, _tracer.Pid);
            int done = JumpRing.Drain(ring, RingCapacity, ref _tail, 4096, ref delivery);
            Interlocked.Exchange(ref _ringDropped, JumpRing.Dropped(ring));
            return done;
        }
    }

    /// <summary>Turns each record into a hit for the consumer, straight from the shared ring.</summary>
    private readonly struct Delivery(JumpUprobeSession session, int pid) : IJumpRecordHandler
    {
        public void Handle(byte* record) => session.Deliver(pid, record);
    }

    /// <summary>Hands one record to the consumer: in place for a raw consumer, else decoded into a <see cref="UprobeHit"/>.</summary>
    private void Deliver(int pid, byte* record)
    {
        uint probe = *(uint*)(record + JumpRing.ProbeOffset);
        if (probe >= (uint)_specs.Count)
        {
            Interlocked.Increment(ref _malformed);
            return;
        }
        UprobeSpec spec = _specs[(int)probe];
        var registers = new ReadOnlySpan<ulong>(record + JumpRing.RegistersOffset, 6);
        int stringRegister = _stringRegisters[(int)probe];
        var text = ReadOnlySpan<byte>.Empty;
        if (stringRegister >= 0)
        {
            text = new ReadOnlySpan<byte>(record + JumpRing.StringOffset, JumpRing.StringBytes);
            int end = text.IndexOf((byte)0);
            if (end >= 0)
                text = text[..end];
        }
        int tid = *(int*)(record + JumpRing.ThreadOffset);
        long timestamp = _clock.ToUnixNanoseconds(*(long*)(record + JumpRing.TimestampOffset));
        Interlocked.Increment(ref _hits);
        if (_consumer.TakesRaw)
        {
            _consumer.Deliver(new RawUprobeHit(spec, pid, tid, timestamp, registers, text));
            return;
        }
        (ulong, string?)[] fetched = [];
        if (stringRegister >= 0)
        {
            string value = System.Text.Encoding.UTF8.GetString(text);
            ulong pointer = registers[stringRegister];
            // An empty copy of a pointer that is not NULL means the trampoline could not read it.
            fetched = [(pointer, pointer != 0 && value.Length == 0 && !Readable(pid, pointer) ? null : value)];
        }
        object?[] values = spec.Decode(registers, new StringSource(fetched));
        _consumer.Deliver(new UprobeHit(spec, pid, tid, timestamp, values));
    }

    /// <summary>Whether the target's byte at <paramref name="address"/> can be read now (only to tell an unreadable string from an empty one).</summary>
    private static bool Readable(int pid, ulong address)
    {
        byte b;
        return Read(pid, address, &b, 1);
    }

    private static bool Read(int pid, ulong address, byte* buffer, int length)
    {
        var local = new Native.IoVec { Base = buffer, Length = (nuint)length };
        var remote = new Native.IoVec { Base = (void*)address, Length = (nuint)length };
        return Native.process_vm_readv(pid, &local, 1, &remote, 1, 0) == length;
    }
}
