using System;
using System.Runtime.InteropServices;

namespace ProbeGen.Uprobes.Jump;

/// <summary>
/// The memory a <see cref="JumpRing"/> lives in: a memfd that the target and the tracer both map
/// shared, so trampolines write records with plain stores and the tracer reads and frees them with
/// plain loads and stores, no system call per drain.
/// </summary>
/// <remarks>
/// <para><b>Creation</b>, with every thread of the target stopped: memfd_create, ftruncate and
/// mmap(MAP_SHARED | MAP_POPULATE) are injected into the target (<see cref="TraceeSyscall"/>); the
/// tracer opens the same file through <c>/proc/PID/fd/N</c>, seals its size and maps it too; then
/// the target's descriptor is closed. Its mapping holds the file, which shows in
/// <c>/proc/PID/maps</c> as <c>/memfd:probegen-jump-ring (deleted)</c>.</para>
/// <para>The seals (no shrinking, no growing, no more seals) mean the target cannot truncate the file
/// under the tracer's mapping: a read past its end would be a SIGBUS in the tracer.</para>
/// <para>Everything in it is written by the target too: the tracer treats what it reads as untrusted
/// and never takes a size or an index from it (see <see cref="JumpRing.Drain"/>).</para>
/// <para>A forked child inherits the target's shared mapping; the session puts back the child's
/// original bytes before it runs, so it never writes into the ring. After a killed tracer, it may:
/// the ring then only fills sooner.</para>
/// </remarks>
internal sealed unsafe class JumpRingMemory : IDisposable
{
    /// <summary>The memfd's name, as <c>/proc/PID/maps</c> shows it (after <c>/memfd:</c>).</summary>
    public const string Name = "probegen-jump-ring";

    private const ulong MfdCloexec = 1, MfdAllowSealing = 2;
    private const ulong ProtReadWrite = 3, MapSharedPopulate = 0x1 | 0x8000;
    private const int FAddSeals = 1033, SealSeal = 1, SealShrink = 2, SealGrow = 4;

    private byte* _view;

    private JumpRingMemory(ulong targetAddress, ulong size, byte* view)
    {
        TargetAddress = targetAddress;
        Size = size;
        _view = view;
    }

    /// <summary>Where the ring is mapped in the target.</summary>
    public ulong TargetAddress { get; }

    /// <summary>The ring's size in bytes.</summary>
    public ulong Size { get; }

    /// <summary>The tracer's view of the same memory; null once disposed.</summary>
    public byte* Ring => _view;

    /// <summary>
    /// Creates an empty ring of <paramref name="capacity"/> records shared by the target and this
    /// process. Every thread of the target is stopped.
    /// </summary>
    /// <param name="tracer">The target's tracer.</param>
    /// <param name="capacity">Records, a power of two.</param>
    /// <param name="scratch">Target memory the engine owns and rewrites afterwards (the memfd's name is written there for memfd_create to read).</param>
    /// <exception cref="UprobeException">A step failed; what the target got of it is undone.</exception>
    public static JumpRingMemory Create(PtraceTracer tracer, int capacity, ulong scratch)
    {
        int pid = tracer.Pid;
        ulong size = (ulong)((JumpRing.Size(capacity) + 4095) & ~4095L);
        TraceeMemory.WriteBytes(tracer.AnyStopped, scratch, [.. System.Text.Encoding.ASCII.GetBytes(Name), 0]);
        long fd = TraceeSyscall.Run(tracer, TraceeSyscall.MemfdCreate, scratch, MfdCloexec | MfdAllowSealing);
        if (fd < 0)
            throw new UprobeException($"cannot create the ring's memfd in process {pid} (memfd_create: errno {-fd}); use --backend perf or ptrace");
        ulong target = 0;
        try
        {
            long result = TraceeSyscall.Run(tracer, TraceeSyscall.Ftruncate, (ulong)fd, size);
            if (result < 0)
                throw new UprobeException($"cannot size the ring's memfd in process {pid} (ftruncate: errno {-result})");
            // Populated up front: a first write to each page would otherwise fault inside a hit.
            long mapped = TraceeSyscall.Run(tracer, TraceeSyscall.Mmap, 0, size, ProtReadWrite, MapSharedPopulate, (ulong)fd, 0);
            if (mapped < 0 || (mapped & 0xFFF) != 0)
                throw new UprobeException($"cannot map the ring in process {pid} (mmap: errno {-mapped})");
            target = (ulong)mapped;
            Warm(tracer, scratch, target, size);
            byte* view = MapHere(pid, (int)fd, size);
            // A new memfd reads as zeros: only the capacity needs writing, and stores from this
            // process would not warm the target's view (see Warm).
            JumpRing.Initialize(view, capacity, zeroed: true);
            return new JumpRingMemory(target, size, view);
        }
        catch
        {
            if (target != 0)
                TryRun(tracer, TraceeSyscall.Munmap, target, size);
            throw;
        }
        finally
        {
            // The mapping keeps the file: the target needs no descriptor (and a program that closes
            // every descriptor it does not know of would close it anyway).
            TryRun(tracer, TraceeSyscall.Close, (ulong)fd);
        }
    }

    /// <summary>Cleanup on the way out: a failure here (the target has exited) must not hide the one that got us here.</summary>
    private static void TryRun(PtraceTracer tracer, long number, ulong a1, ulong a2 = 0)
    {
        try
        {
            TraceeSyscall.Run(tracer, number, a1, a2);
        }
        catch (UprobeException)
        {
        }
    }

    /// <summary>
    /// Stores zeros over the whole ring from inside the target (a loop at <paramref name="scratch"/>
    /// run in a stopped thread), before any hit. Measured on a Firecracker guest: the first store
    /// through the target's mapping to each line of a populated ring costs 200-600 ns, and stores
    /// through the tracer's mapping or a pread into it do not change that; after the target's own
    /// stores, one costs under 10 ns. The first hits would otherwise pay it (about 30 ms for 8 MB, at attach instead).
    /// </summary>
    private static void Warm(PtraceTracer tracer, ulong scratch, ulong ring, ulong size)
    {
        // rdi: the ring; rsi: its 64-byte lines. 1: mov qword [rdi], 0; add rdi, 64; dec rsi; jnz 1b; int3
        byte[] loop = [0x48, 0xC7, 0x07, 0x00, 0x00, 0x00, 0x00, 0x48, 0x83, 0xC7, 0x40, 0x48, 0xFF, 0xCE, 0x75, 0xF0, 0xCC];
        ulong code = scratch + 64;
        TraceeMemory.WriteBytes(tracer.AnyStopped, code, loop);
        TraceeSyscall.RunCode(tracer, code, ring, size / 64);
    }

    /// <summary>Opens the target's descriptor <paramref name="fd"/> here, seals the file's size and maps it shared.</summary>
    private static byte* MapHere(int pid, int fd, ulong size)
    {
        string path = $"/proc/{pid}/fd/{fd}";
        int ours = Native.open(path, Native.OpenReadWrite | Native.OpenCloexec);
        if (ours < 0)
            throw new UprobeException($"cannot open the ring's memfd as {path}: {Marshal.GetLastPInvokeErrorMessage()}");
        try
        {
            if (Native.fcntl(ours, FAddSeals, SealShrink | SealGrow | SealSeal) != 0)
                throw new UprobeException($"cannot seal the ring's memfd: {Marshal.GetLastPInvokeErrorMessage()}");
            void* view = Native.mmap(null, (nuint)size, Native.ProtRead | Native.ProtWrite, Native.MapShared | Native.MapPopulate, ours, 0);
            if ((nint)view == -1)
                throw new UprobeException($"cannot map the ring's memfd: {Marshal.GetLastPInvokeErrorMessage()}");
            return (byte*)view;
        }
        finally
        {
            Native.close(ours);
        }
    }

    /// <summary>Unmaps the ring in the target. Every thread is stopped, and none can still write into it (no jump and no thread leads into a trampoline).</summary>
    /// <returns>Whether the target's munmap succeeded.</returns>
    public bool UnmapInTarget(PtraceTracer tracer) => TraceeSyscall.Run(tracer, TraceeSyscall.Munmap, TargetAddress, Size) == 0;

    /// <summary>Unmaps the tracer's view; the caller has drained the ring for the last time.</summary>
    public void Dispose()
    {
        if (_view is null)
            return;
        Native.munmap(_view, (nuint)Size);
        _view = null;
    }
}
