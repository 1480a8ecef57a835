using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using ProbeGen.Concurrency;
using ProbeGen.Registry;

namespace ProbeGen.Uprobes;

/// <summary>One hit of a native uprobe.</summary>
/// <param name="Spec">The spec that fired.</param>
/// <param name="Pid">The process.</param>
/// <param name="Tid">The thread.</param>
/// <param name="TimestampNs">Wall-clock time of the hit, Unix nanoseconds (stamped by the kernel on CLOCK_MONOTONIC).</param>
/// <param name="Values">The captured values, typed as the spec says: long, ulong, or string (null for a NULL char*).</param>
public sealed record UprobeHit(UprobeSpec Spec, int Pid, int Tid, long TimestampNs, object?[] Values);

/// <summary>
/// Native uprobes through the kernel's uprobe PMU (<c>perf_event_open</c>): the kernel places and
/// removes the int3, so a crashed tracer leaves nothing behind. One event and one ring buffer per
/// probe per CPU, sampling TID, TIME and the argument (or return) registers.
/// </summary>
/// <remarks>
/// Attached probes live in the shared lockless registry, keyed (device, inode, offset). Before it
/// drains a probe's rings, the reader thread looks the probe up and takes a reference inside a
/// read-side section of <see cref="Probes.Domain"/>, and leaves the section at once: records are
/// decoded and handed to the consumer under the reference only, so a slow consumer never holds up
/// a grace period. A detached probe's buffers are unmapped and its descriptors closed a grace
/// period after its last reference is dropped, when no reader can still be inside them.
/// </remarks>
public sealed unsafe class PerfUprobeSession : IUprobeSession
{
    // x86-64 perf register indexes (arch/x86/include/uapi/asm/perf_regs.h).
    private const int RegAx = 0, RegCx = 2, RegDx = 3, RegSi = 4, RegDi = 5, RegSp = 7, RegR8 = 16, RegR9 = 17;
    private static readonly int[] ArgumentRegisters = [RegDi, RegSi, RegDx, RegCx, RegR8, RegR9];

    /// <summary>
    /// The registers a spec needs, and no more (every sampled register is copied into the ring on
    /// every hit): its argument registers, rax for a return, and rsp to place the stack copy of a
    /// string probe. The kernel writes them in index order.
    /// </summary>
    private static ulong RegisterMask(UprobeSpec spec)
    {
        ulong mask = spec.Types.Contains(ArgType.Str) ? 1UL << RegSp : 0;
        for (int i = 0; i < spec.Types.Count; i++)
            mask |= 1UL << (spec.Return ? RegAx : ArgumentRegisters[i]);
        return mask != 0 ? mask : 1UL << RegAx;  // perf_event_open refuses REGS_USER with an empty mask
    }

    private const ulong SampleTid = 1 << 1, SampleTime = 1 << 2, SampleRegsUser = 1 << 12, SampleStackUser = 1 << 13, SampleRaw = 1 << 10;
    private const int RecordLost = 2, RecordSample = 9;

    /// <summary>
    /// Bytes of the user stack copied with each hit of a probe that captures a string
    /// (PERF_SAMPLE_STACK_USER). A string in a caller's stack buffer is then read as it was at the
    /// hit, even if the buffer is reused before the ring is drained or the process has exited.
    /// </summary>
    private const int StackCopyBytes = 1024;

    /// <summary>PERF_FORMAT_LOST (Linux 6.0): read() on the event also returns the samples it lost.</summary>
    private const ulong FormatLost = 1 << 4;

    /// <summary>One record at a time, copied out of the ring (records wrap around its end); records are at most 64 KB.</summary>
    private readonly byte[] _record = new byte[1 << 16];

    /// <summary>Held while draining: by the reader thread, and by <see cref="Flush"/> on the caller's.</summary>
    private readonly Lock _drainLock = new();

    private readonly List<AttachedProbe> _probes = [];
    private readonly HitConsumer _consumer;
    private PtraceTracer? _launched;

    /// <summary>CLOCK_MONOTONIC nanoseconds before which hits are ignored (launch mode: before the exec).</summary>
    private long _notBeforeNs;
    private int _pid;
    private readonly Thread _reader;
    private volatile bool _stopping;
    private long _dropped, _hits;

    /// <summary>Wall clock minus CLOCK_MONOTONIC, in nanoseconds, taken at start.</summary>
    private readonly long _monotonicToUnix = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100
        - (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (1_000_000_000.0 / System.Diagnostics.Stopwatch.Frequency));

    private PerfUprobeSession(int? pid, Action<UprobeHit> onHit)
    {
        // -1 matches no process: launch mode starts that way and sets the child's pid once it exists.
        _pid = pid ?? 0;
        _consumer = new HitConsumer(onHit);
        _reader = new Thread(ReadLoop) { IsBackground = true, Name = "uprobe ring reader" };
    }

    /// <summary>Samples lost in full ring buffers (PERF_RECORD_LOST).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>
    /// Only hits of this process are delivered (0: every process; -1: none yet). Launch mode
    /// attaches with -1 and sets the child's pid right after starting it, so the child's first hits
    /// are kept and no other process's hits slip in meanwhile.
    /// </summary>
    public int ProcessFilter
    {
        get => Volatile.Read(ref _pid);
        set => Volatile.Write(ref _pid, value);
    }

    /// <summary>Hits delivered.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <inheritdoc />
    public long FaultCount => _consumer.FaultCount;

    /// <inheritdoc />
    public Exception? LastFault => _consumer.LastFault;

    /// <summary>
    /// Attaches every spec, on every CPU, and starts reading. Hits of processes other than
    /// <paramref name="pid"/> (when given) are ignored.
    /// </summary>
    /// <exception cref="UprobeException">A spec cannot be resolved, or perf_event_open refuses (the message says what is needed).</exception>
    public static PerfUprobeSession Start(IEnumerable<UprobeSpec> specs, int? pid, Action<UprobeHit> onHit)
    {
        var session = new PerfUprobeSession(pid, onHit);
        try
        {
            foreach (UprobeSpec spec in specs)
                session.Attach(spec);
        }
        catch
        {
            session.Dispose();
            throw;
        }
        session._reader.Start();
        return session;
    }

    /// <summary>
    /// Attaches every spec, then starts <paramref name="command"/> and delivers only its hits. The
    /// probes are the kernel's; ptrace holds the program only at two moments. At its start, so the
    /// filter is set before any of its code runs. At each thread's exit, while the rings are
    /// drained: a hit's strings outside the stack copy (in .rodata or the heap) are read while the
    /// process's memory still exists.
    /// </summary>
    /// <param name="specs">The probes.</param>
    /// <param name="command">The program and its arguments, looked up on PATH like a shell does.</param>
    /// <param name="onHit">Called on the reader thread (or the launcher's, at a thread's exit) for each hit.</param>
    /// <param name="standardOutput">A file descriptor of this process to become the program's standard output; -1 shares ours.</param>
    /// <exception cref="UprobeException">A spec cannot be resolved, perf_event_open refuses, or the program cannot be started.</exception>
    public static PerfUprobeSession Launch(IEnumerable<UprobeSpec> specs, IReadOnlyList<string> command, Action<UprobeHit> onHit, int standardOutput = -1)
    {
        PerfUprobeSession session = Start(specs, -1, onHit);
        try
        {
            // At the exec: hits of this pid stamped earlier were the launcher shell's.
            session._launched = ProgramLauncher.Launch(command, standardOutput,
                onStarted: pid =>
                {
                    Volatile.Write(ref session._notBeforeNs, MonotonicNow());
                    session.ProcessFilter = pid;
                },
                onThreadExit: _ => session.Flush());
        }
        catch
        {
            session.Dispose();
            throw;
        }
        return session;
    }

    /// <summary>The program <see cref="Launch"/> started, if any.</summary>
    public int? LaunchedPid => _launched?.Pid;

    /// <summary>The launched program's exit status once it has exited; otherwise null.</summary>
    public int? ExitCode => _launched?.ExitCode;

    /// <inheritdoc />
    public UprobeBackend Backend => UprobeBackend.Perf;

    /// <summary>Always true: the kernel places the probes when they are attached, before the program runs.</summary>
    public bool Planted => true;

    /// <summary>Always null: a perf session reports its errors when it starts, and the kernel's probes cannot fail later.</summary>
    public Exception? Failure => null;

    /// <summary>Waits for the launched program to exit.</summary>
    /// <exception cref="InvalidOperationException">The session was not started with <see cref="Launch"/>.</exception>
    public bool WaitForEnd(TimeSpan timeout) =>
        (_launched ?? throw new InvalidOperationException("only a launched session ends by itself")).WaitForEnd(timeout);

    /// <summary>CLOCK_MONOTONIC now, in nanoseconds: the clock the events stamp hits with (Stopwatch reads it on Linux).</summary>
    private static long MonotonicNow() => (long)(System.Diagnostics.Stopwatch.GetTimestamp() * (1_000_000_000.0 / System.Diagnostics.Stopwatch.Frequency));

    /// <summary>The uprobe PMU's type and its retprobe bit, from sysfs.</summary>
    internal static (uint Type, int RetprobeBit) Pmu()
    {
        const string root = "/sys/bus/event_source/devices/uprobe";
        if (!File.Exists(Path.Combine(root, "type")))
            throw new UprobeException("this kernel has no uprobe PMU (/sys/bus/event_source/devices/uprobe); use --backend ptrace", environment: true);
        try
        {
            uint type = uint.Parse(File.ReadAllText(Path.Combine(root, "type")).Trim(), CultureInfo.InvariantCulture);
            string format = File.ReadAllText(Path.Combine(root, "format/retprobe")).Trim();  // "config:0"
            int bit = int.Parse(format[(format.IndexOf(':') + 1)..], CultureInfo.InvariantCulture);
            return (type, bit);
        }
        catch (Exception ex) when (ex is IOException or FormatException or UnauthorizedAccessException)
        {
            throw new UprobeException($"cannot read the uprobe PMU description in {root}: {ex.Message}", environment: true);
        }
    }

    private void Attach(UprobeSpec spec)
    {
        (string path, ulong offset) = ElfSymbols.Resolve(spec);
        (uint type, int retprobeBit) = Pmu();
        // A str spec goes through tracefs where it can: the kernel then fetches the strings at the hit.
        TracefsEvent? tracefs = spec.Types.Contains(ArgType.Str) ? TracefsEvent.TryDefine(spec, path, offset) : null;
        (ulong device, ulong inode) = Native.FileId(path);
        var probe = new AttachedProbe(new UprobeKey(device, inode, offset, spec.Return), spec, tracefs);
        bool copiesStack = tracefs is null && spec.Types.Contains(ArgType.Str);
        // Bursts from several threads must fit while the reader is not scheduled: 1 MB per CPU, 4 MB with stack copies.
        int dataPages = copiesStack ? 1024 : 256;
        byte[] pathBytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* pathPointer = pathBytes)
        {
            foreach (int cpu in OnlineCpus())
            {
                var attr = new Native.PerfEventAttr
                {
                    Type = type,
                    Size = (uint)sizeof(Native.PerfEventAttr),
                    Config = spec.Return ? 1UL << retprobeBit : 0,
                    SamplePeriod = 1,
                    SampleType = SampleTid | SampleTime | SampleRegsUser | (copiesStack ? SampleStackUser : 0),
                    // disabled (bit 0), then enabled once all are open; use_clockid (bit 25) with
                    // CLOCK_MONOTONIC (1), the clock Stopwatch reads, so stamps convert to wall time.
                    // watermark (bit 14): wake the reader when a quarter of the ring is full, not per
                    // sample; the reader's 50 ms poll timeout bounds the latency of a quiet probe.
                    Flags = 1UL | (1UL << 14) | (1UL << 25),
                    ClockId = 1,
                    WakeupEvents = (uint)(dataPages * Environment.SystemPageSize / 4),
                    Config1 = (ulong)pathPointer,
                    Config2 = offset,
                    SampleRegsUser = probe.RegisterMask,
                    SampleStackUser = copiesStack ? StackCopyBytes : 0u,
                };
                if (tracefs is not null)
                {
                    attr.Type = 2;  // PERF_TYPE_TRACEPOINT
                    attr.Config = (ulong)tracefs.Id;
                    attr.Config1 = attr.Config2 = 0;
                    attr.SampleType = SampleTid | SampleTime | SampleRaw;
                    attr.SampleRegsUser = 0;
                }
                attr.ReadFormat = FormatLost;
                int fd = (int)Native.syscall(Native.SysPerfEventOpen, &attr, -1, cpu, -1, Native.PerfFlagFdCloexec);
                if (fd < 0 && Marshal.GetLastPInvokeError() == 22 /* EINVAL: a kernel before 6.0 */)
                {
                    attr.ReadFormat = 0;
                    fd = (int)Native.syscall(Native.SysPerfEventOpen, &attr, -1, cpu, -1, Native.PerfFlagFdCloexec);
                }
                if (fd < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    probe.Close();
                    throw new UprobeException(errno is 1 or 13
                        ? $"no permission to open uprobe events (errno {errno}): run as root, or grant CAP_PERFMON, or lower /proc/sys/kernel/perf_event_paranoid (now {Paranoid()})"
                        : $"perf_event_open failed for {spec.Text}: {Marshal.GetPInvokeErrorMessage(errno)}", environment: true);
                }
                nuint length = (nuint)((1 + dataPages) * Environment.SystemPageSize);
                void* ring = Native.mmap(null, length, Native.ProtRead | Native.ProtWrite, Native.MapShared, fd, 0);
                if (ring == (void*)-1)
                {
                    Native.close(fd);
                    probe.Close();
                    int errno = Marshal.GetLastPInvokeError();
                    throw new UprobeException(errno is 1 or 12
                        ? $"cannot map a {length / 1024} KB perf ring buffer ({Marshal.GetPInvokeErrorMessage(errno)}): raise RLIMIT_MEMLOCK or /proc/sys/kernel/perf_event_mlock_kb, or run as root"
                        : $"cannot map the perf ring buffer: {Marshal.GetPInvokeErrorMessage(errno)}", environment: errno is 1 or 12);
                }
                probe.Rings.Add(new Ring(fd, (byte*)ring, length, attr.ReadFormat == FormatLost));
            }
        }
        foreach (Ring ring in probe.Rings)
            Native.ioctl(ring.Fd, Native.PerfEventIocEnable, 0);
        if (!UprobeRegistry.Probes.TryAdd(probe))
        {
            probe.Close();
            throw new UprobeException($"{spec.Text} is already attached in this process");
        }
        _probes.Add(probe);
    }

    /// <summary>
    /// The baseline the benchmark compares with: a bare counting uprobe on one process (no
    /// sampling, no ring buffer), read at the end. Returns the descriptor; read it with <see cref="ReadCount"/>.
    /// </summary>
    internal static int OpenCounter(string path, ulong offset, int pid)
    {
        (uint type, _) = Pmu();
        byte[] pathBytes = System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(path) + "\0");
        fixed (byte* pathPointer = pathBytes)
        {
            var attr = new Native.PerfEventAttr
            {
                Type = type,
                Size = (uint)sizeof(Native.PerfEventAttr),
                Config1 = (ulong)pathPointer,
                Config2 = offset,
            };
            int fd = (int)Native.syscall(Native.SysPerfEventOpen, &attr, pid, -1, -1, Native.PerfFlagFdCloexec);
            if (fd < 0)
                throw new UprobeException($"perf_event_open (counting) failed: {Marshal.GetLastPInvokeErrorMessage()}");
            return fd;
        }
    }

    /// <summary>Reads and closes a counter opened by <see cref="OpenCounter"/>.</summary>
    internal static long ReadCount(int fd)
    {
        long count = 0;
        Native.read(fd, &count, sizeof(long));
        Native.close(fd);
        return count;
    }

    private static string Paranoid()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/perf_event_paranoid").Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static IEnumerable<int> OnlineCpus()
    {
        string online = File.ReadAllText("/sys/devices/system/cpu/online").Trim();  // e.g. "0-1" or "0,2-3"
        foreach (string part in online.Split(','))
        {
            string[] range = part.Split('-');
            int first = int.Parse(range[0], CultureInfo.InvariantCulture);
            int last = range.Length > 1 ? int.Parse(range[1], CultureInfo.InvariantCulture) : first;
            for (int cpu = first; cpu <= last; cpu++)
                yield return cpu;
        }
    }

    /// <summary>
    /// Delivers every hit already in the rings, on the calling thread, before returning. A
    /// launcher that holds an exiting thread calls it, so that hits are decoded while the
    /// process's memory still exists.
    /// </summary>
    public void Flush()
    {
        if (!_stopping)
            Drain(AllRings());
    }

    private List<(Ring Ring, AttachedProbe Probe)> AllRings()
    {
        var rings = new List<(Ring Ring, AttachedProbe Probe)>();
        foreach (AttachedProbe probe in _probes)
            foreach (Ring ring in probe.Rings)
                rings.Add((ring, probe));
        return rings;
    }

    private void ReadLoop()
    {
        List<(Ring Ring, AttachedProbe Probe)> fds = AllRings();
        var poll = new Native.PollFd[fds.Count];
        for (int i = 0; i < fds.Count; i++)
            poll[i] = new Native.PollFd { Fd = fds[i].Ring.Fd, Events = Native.PollIn };
        while (!_stopping)
        {
            fixed (Native.PollFd* p = poll)
                Native.poll(p, (nuint)poll.Length, 50);
            Drain(fds);
        }
        Drain(fds);
    }

    private void Drain(List<(Ring Ring, AttachedProbe Probe)> rings)
    {
        using Lock.Scope drain = _drainLock.EnterScope();
        foreach (var (ring, probe) in rings)
        {
            if (!TryAcquire(probe))
                continue;  // detached: its rings may be unmapped already
            try
            {
                // Under our reference, outside any read-side section: the probe cannot be
                // reclaimed, so its buffers stay mapped, and the consumer may take its time.
                ReadRing(ring, probe);
            }
            finally
            {
                probe.Release();
            }
        }
    }

    /// <summary>
    /// find_uprobe() for one of our probes: the lookup and "increment if not zero", the only work
    /// done inside the read-side section. The probe's last reference may be dropped at any moment by
    /// <see cref="Dispose"/>; if that wins, the increment fails and the probe counts as gone.
    /// </summary>
    private static bool TryAcquire(AttachedProbe probe)
    {
        if (!UprobeRegistry.Probes.TryAcquire(probe.Key, out UprobeEntry? found))
            return false;
        if (ReferenceEquals(found, probe))
            return true;
        found!.Release();  // ours was detached and the key attached again, by another session
        return false;
    }

    private void ReadRing(Ring ring, AttachedProbe probe)
    {
        byte* header = ring.Base;
        long dataSize = (long)ring.Length - Environment.SystemPageSize;
        byte* data = header + Environment.SystemPageSize;
        // data_head at 1024 is written by the kernel; the acquire read orders the record reads after it.
        ulong head = Volatile.Read(ref *(ulong*)(header + 1024));
        ulong tail = *(ulong*)(header + 1032);
        Span<byte> record = _record;
        while (tail < head)
        {
            long at = (long)(tail % (ulong)dataSize);
            ushort size = ReadU16(data, dataSize, at + 6);
            uint type = ReadU32(data, dataSize, at);
            if (size == 0 || size > record.Length)
                break;
            // A record may wrap around the end of the ring: copy it out in at most two pieces.
            int first = (int)Math.Min(size, dataSize - at);
            new ReadOnlySpan<byte>(data + at, first).CopyTo(record);
            new ReadOnlySpan<byte>(data, size - first).CopyTo(record[first..]);
            if (type == RecordSample)
                Deliver(probe, record[..size]);
            else if (type == RecordLost)
                Interlocked.Add(ref _dropped, (long)BitConverter.ToUInt64(record.Slice(16, 8)));
            tail += size;
        }
        // Release: we are done with the records before the kernel may overwrite them.
        Volatile.Write(ref *(ulong*)(header + 1032), tail);
    }

    private void Deliver(AttachedProbe probe, ReadOnlySpan<byte> record)
    {
        int pid = BitConverter.ToInt32(record.Slice(8, 4));
        int tid = BitConverter.ToInt32(record.Slice(12, 4));
        long time = BitConverter.ToInt64(record.Slice(16, 8));
        int only = Volatile.Read(ref _pid);
        if ((only != 0 && pid != only) || time < Volatile.Read(ref _notBeforeNs))
            return;
        if (probe.Tracefs is { } tracefs)
        {
            // RAW: its size, then the trace entry with the fetched values.
            int size = BitConverter.ToInt32(record.Slice(24, 4));
            object?[] fetched = tracefs.Decode(record.Slice(28, Math.Min(size, record.Length - 28)));
            Interlocked.Increment(ref _hits);
            _consumer.Deliver(new UprobeHit(probe.Spec, pid, tid, time + _monotonicToUnix, fetched));
            return;
        }
        // REGS_USER: abi, then the registers of the probe's mask in index order.
        ulong abi = BitConverter.ToUInt64(record.Slice(24, 8));
        Span<ulong> regs = stackalloc ulong[18];
        int at = 32;
        if (abi != 0)
        {
            for (ulong mask = probe.RegisterMask; mask != 0; mask &= mask - 1)
            {
                regs[System.Numerics.BitOperations.TrailingZeroCount(mask)] = BitConverter.ToUInt64(record.Slice(at, 8));
                at += 8;
            }
        }
        // STACK_USER, when the spec captures a string: size, the copy from rsp up, then how much of it is real.
        ReadOnlySpan<byte> stack = default;
        if (at + 8 <= record.Length)
        {
            int size = (int)BitConverter.ToUInt64(record.Slice(at, 8));
            if (size > 0 && at + 8 + size + 8 <= record.Length)
            {
                int used = (int)Math.Min(BitConverter.ToUInt64(record.Slice(at + 8 + size, 8)), (ulong)size);
                stack = record.Slice(at + 8, used);
            }
        }
        UprobeSpec spec = probe.Spec;
        Span<ulong> raw = stackalloc ulong[UprobeSpec.MaxArguments];
        for (int i = 0; i < spec.Types.Count; i++)
            raw[i] = spec.Return ? regs[RegAx] : regs[ArgumentRegisters[i]];
        object?[] values = spec.Decode(raw, new StringSource(tid, regs[RegSp], stack));
        Interlocked.Increment(ref _hits);
        _consumer.Deliver(new UprobeHit(spec, pid, tid, time + _monotonicToUnix, values));
    }

    private static ushort ReadU16(byte* data, long size, long at) => (ushort)(data[at % size] | (data[(at + 1) % size] << 8));

    private static uint ReadU32(byte* data, long size, long at) =>
        (uint)(data[at % size] | (data[(at + 1) % size] << 8) | (data[(at + 2) % size] << 16) | (data[(at + 3) % size] << 24));

    /// <summary>
    /// Stops reading and detaches every probe (and ends a launched program that still runs). The probes leave the registry at once; their rings
    /// are unmapped and their descriptors closed after a grace period.
    /// </summary>
    public void Dispose()
    {
        // A launched program still running is killed: it was started for the trace.
        _launched?.Dispose();
        _stopping = true;
        if (_reader.IsAlive)
            _reader.Join();
        long lost = 0;
        bool exact = true;
        ulong* counts = stackalloc ulong[2];
        foreach (AttachedProbe probe in _probes)
        {
            foreach (Ring ring in probe.Rings)
            {
                Native.ioctl(ring.Fd, Native.PerfEventIocDisable, 0);
                // { count, lost }: the kernel's own total. PERF_RECORD_LOST reports the same losses,
                // but only once the ring has room again, so a burst at the end goes unreported.
                if (ring.CountsLost && Native.read(ring.Fd, counts, 16) == 16)
                    lost += (long)counts[1];
                else
                    exact = false;
            }
            UprobeRegistry.Probes.Remove(probe);
        }
        if (exact)
            Interlocked.Exchange(ref _dropped, Math.Max(lost, Interlocked.Read(ref _dropped)));
        _probes.Clear();
        // Wait out the grace period and run the reclamation now, so descriptors, rings and tracefs
        // events are gone when Dispose returns, even if the process exits right after.
        Probes.Domain.Barrier();
    }

    /// <summary>One mapped ring buffer and its perf event.</summary>
    internal sealed class Ring(int fd, byte* @base, nuint length, bool countsLost)
    {
        public int Fd { get; } = fd;

        /// <summary>Whether read() reports lost samples (PERF_FORMAT_LOST).</summary>
        public bool CountsLost { get; } = countsLost;

        public byte* Base { get; } = @base;

        public nuint Length { get; } = length;
    }

    /// <summary>An attached probe in the registry; its rings are released a grace period after it dies.</summary>
    internal sealed class AttachedProbe(UprobeKey key, UprobeSpec spec, TracefsEvent? tracefs) : UprobeEntry(key, spec)
    {
        /// <summary>The tracefs event behind the probe, when it has one (str specs).</summary>
        public TracefsEvent? Tracefs { get; } = tracefs;

        /// <summary>The registers each hit samples.</summary>
        public ulong RegisterMask { get; } = PerfUprobeSession.RegisterMask(spec);

        public List<Ring> Rings { get; } = [];

        protected override void OnReclaimed() => Close();

        public void Close()
        {
            foreach (Ring ring in Rings)
            {
                Native.munmap(ring.Base, ring.Length);
                Native.close(ring.Fd);
            }
            Rings.Clear();
            Tracefs?.Remove();  // after its descriptors are closed: tracefs refuses to remove an event in use
        }
    }
}
