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

/// <summary>The registry key of a native probe: the file's inode and the probed file offset, as the kernel's uprobes keys them.</summary>
/// <param name="Inode">The ELF file's inode.</param>
/// <param name="Offset">The file offset of the probed instruction.</param>
/// <param name="Return">True for a return probe, which is a separate probe at the same place.</param>
public readonly record struct UprobeKey(ulong Inode, ulong Offset, bool Return) : IComparable<UprobeKey>
{
    /// <inheritdoc />
    public int CompareTo(UprobeKey other)
    {
        int c = Inode.CompareTo(other.Inode);
        if (c == 0)
            c = Offset.CompareTo(other.Offset);
        return c != 0 ? c : Return.CompareTo(other.Return);
    }
}

/// <summary>
/// Native uprobes through the kernel's uprobe PMU (<c>perf_event_open</c>): the kernel places and
/// removes the int3, so a crashed tracer leaves nothing behind. One event and one ring buffer per
/// probe per CPU, sampling TID, TIME and the argument (or return) registers.
/// </summary>
/// <remarks>
/// Attached probes live in the shared lockless registry, keyed (inode, offset). The reader thread
/// drains ring buffers inside a read-side section of <see cref="Probes.Domain"/>; a detached
/// probe's buffers are unmapped and its descriptors closed only after a grace period, when no
/// reader can still be inside them.
/// </remarks>
public sealed unsafe class PerfUprobeSession : IUprobeSession
{
    // x86-64 perf register indexes (arch/x86/include/uapi/asm/perf_regs.h).
    private const int RegAx = 0, RegCx = 2, RegDx = 3, RegSi = 4, RegDi = 5, RegR8 = 16, RegR9 = 17;
    private static readonly int[] ArgumentRegisters = [RegDi, RegSi, RegDx, RegCx, RegR8, RegR9];
    private static readonly ulong RegisterMask = (1UL << RegAx) | (1UL << RegCx) | (1UL << RegDx) | (1UL << RegSi) | (1UL << RegDi) | (1UL << RegR8) | (1UL << RegR9);

    private const ulong SampleTid = 1 << 1, SampleTime = 1 << 2, SampleRegsUser = 1 << 12;
    private const int RecordLost = 2, RecordSample = 9;
    private const int DataPages = 64;

    private readonly List<AttachedProbe> _probes = [];
    private readonly Action<UprobeHit> _onHit;
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
        _onHit = onHit;
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
        var probe = new AttachedProbe(new UprobeKey(Native.Inode(path), offset, spec.Return), spec);
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
                    SampleType = SampleTid | SampleTime | SampleRegsUser,
                    // disabled (bit 0), then enabled once all are open; use_clockid (bit 25) with
                    // CLOCK_MONOTONIC (1), the clock Stopwatch reads, so stamps convert to wall time.
                    // watermark (bit 14): wake the reader when a quarter of the ring is full, not per
                    // sample; the reader's 50 ms poll timeout bounds the latency of a quiet probe.
                    Flags = 1UL | (1UL << 14) | (1UL << 25),
                    ClockId = 1,
                    WakeupEvents = (uint)(DataPages * Environment.SystemPageSize / 4),
                    Config1 = (ulong)pathPointer,
                    Config2 = offset,
                    SampleRegsUser = RegisterMask,
                };
                int fd = (int)Native.syscall(Native.SysPerfEventOpen, &attr, -1, cpu, -1, Native.PerfFlagFdCloexec);
                if (fd < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    probe.Close();
                    throw new UprobeException(errno is 1 or 13
                        ? $"no permission to open uprobe events (errno {errno}): run as root, or grant CAP_PERFMON, or lower /proc/sys/kernel/perf_event_paranoid (now {Paranoid()})"
                        : $"perf_event_open failed for {spec.Text}: {Marshal.GetPInvokeErrorMessage(errno)}", environment: true);
                }
                nuint length = (nuint)((1 + DataPages) * Environment.SystemPageSize);
                void* ring = Native.mmap(null, length, Native.ProtRead | Native.ProtWrite, Native.MapShared, fd, 0);
                if (ring == (void*)-1)
                {
                    Native.close(fd);
                    probe.Close();
                    throw new UprobeException($"cannot map the perf ring buffer: {Marshal.GetLastPInvokeErrorMessage()}");
                }
                probe.Rings.Add(new Ring(fd, (byte*)ring, length));
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

    private void ReadLoop()
    {
        var fds = new List<(Ring Ring, AttachedProbe Probe)>();
        foreach (AttachedProbe probe in _probes)
            foreach (Ring ring in probe.Rings)
                fds.Add((ring, probe));
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
        using SrcuReadGuard guard = Probes.Domain.Enter();
        foreach (var (ring, probe) in rings)
        {
            // Found alive under the section, so its buffers stay mapped until the section ends.
            if (!probe.IsAlive)
                continue;
            ReadRing(ring, probe);
        }
    }

    private void ReadRing(Ring ring, AttachedProbe probe)
    {
        byte* header = ring.Base;
        long dataSize = DataPages * Environment.SystemPageSize;
        byte* data = header + Environment.SystemPageSize;
        // data_head at 1024 is written by the kernel; the acquire read orders the record reads after it.
        ulong head = Volatile.Read(ref *(ulong*)(header + 1024));
        ulong tail = *(ulong*)(header + 1032);
        Span<byte> record = stackalloc byte[512];
        while (tail < head)
        {
            long at = (long)(tail % (ulong)dataSize);
            ushort size = ReadU16(data, dataSize, at + 6);
            uint type = ReadU32(data, dataSize, at);
            if (size == 0 || size > record.Length)
                break;
            for (int i = 0; i < size; i++)
                record[i] = data[(at + i) % dataSize];
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
        if (only != 0 && pid != only)
            return;
        // REGS_USER: abi, then the registers of the mask in index order: ax, cx, dx, si, di, r8, r9.
        ulong abi = BitConverter.ToUInt64(record.Slice(24, 8));
        Span<ulong> regs = stackalloc ulong[18];
        if (abi != 0)
        {
            int[] order = [RegAx, RegCx, RegDx, RegSi, RegDi, RegR8, RegR9];
            for (int i = 0; i < order.Length; i++)
                regs[order[i]] = BitConverter.ToUInt64(record.Slice(32 + i * 8, 8));
        }
        UprobeSpec spec = probe.Spec;
        Span<ulong> raw = stackalloc ulong[UprobeSpec.MaxArguments];
        for (int i = 0; i < spec.Types.Count; i++)
            raw[i] = spec.Return ? regs[RegAx] : regs[ArgumentRegisters[i]];
        object?[] values = spec.Decode(raw, pid);
        Interlocked.Increment(ref _hits);
        _onHit(new UprobeHit(spec, pid, tid, time + _monotonicToUnix, values));
    }

    private static ushort ReadU16(byte* data, long size, long at) => (ushort)(data[at % size] | (data[(at + 1) % size] << 8));

    private static uint ReadU32(byte* data, long size, long at) =>
        (uint)(data[at % size] | (data[(at + 1) % size] << 8) | (data[(at + 2) % size] << 16) | (data[(at + 3) % size] << 24));

    /// <summary>
    /// Stops reading and detaches every probe. The probes leave the registry at once; their rings
    /// are unmapped and their descriptors closed after a grace period.
    /// </summary>
    public void Dispose()
    {
        _stopping = true;
        if (_reader.IsAlive)
            _reader.Join();
        foreach (AttachedProbe probe in _probes)
        {
            foreach (Ring ring in probe.Rings)
                Native.ioctl(ring.Fd, Native.PerfEventIocDisable, 0);
            UprobeRegistry.Probes.Remove(probe);
        }
        _probes.Clear();
    }

    /// <summary>One mapped ring buffer and its perf event.</summary>
    internal sealed class Ring(int fd, byte* @base, nuint length)
    {
        public int Fd { get; } = fd;

        public byte* Base { get; } = @base;

        public nuint Length { get; } = length;
    }

    /// <summary>An attached probe in the registry; its rings are released a grace period after it dies.</summary>
    internal sealed class AttachedProbe(UprobeKey key, UprobeSpec spec) : UprobeEntry(key, spec)
    {
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
        }
    }
}
