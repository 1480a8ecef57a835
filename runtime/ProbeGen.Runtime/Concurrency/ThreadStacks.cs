using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace ProbeGen.Concurrency;

/// <summary>
/// Lets a reader find its <see cref="ReaderCounters"/> from its own stack pointer, on x64 Linux,
/// so that entering a read-side section needs no thread-static access.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> On linux-x64 every thread-static access in a JIT-compiled method calls the
/// runtime's TLS resolver and follows a chain of loads: most of what a section costs. The address
/// of a local is free, and thread stacks never overlap.</para>
/// <para><b>Soundness.</b> A block may be found through a stack address only by the thread whose
/// stack holds that address. Each block records its owner's exact stack (from
/// <c>pthread_getattr_np</c>, which excludes the guard page), and the lookup checks the address
/// against it. The danger is a stack reused after its thread exits: the C library caches stacks
/// and hands them to new threads. So every armed thread holds a <c>pthread</c> key whose
/// destructor, a few bytes of machine code written here, clears the range of each of the thread's
/// blocks. Key destructors run on the exiting thread before its stack is released, so a new thread
/// never matches a dead thread's range; it falls back to the thread-static lookup and arms its own
/// block. The destructor must be native code: by then the runtime may have detached the thread.</para>
/// <para>Anything unexpected (another OS or architecture, a C library without these functions,
/// memory that cannot be made executable) leaves <see cref="IsSupported"/> false, and every reader
/// uses the thread-static lookup, as before.</para>
/// </remarks>
internal static unsafe class ThreadStacks
{
    /// <summary>Stack addresses are hashed in buckets of 64 KB.</summary>
    public const int BucketShift = 16;

    /// <summary>Buckets per domain table: 4096 buckets of 64 KB map a 256 MB window without collision.</summary>
    public const int Buckets = 4096;

    /// <summary>The key whose destructor clears an exiting thread's ranges.</summary>
    private static readonly uint s_key;

    /// <summary>True where readers may find their blocks by stack address.</summary>
    public static readonly bool IsSupported = Initialize(out s_key);

    /// <summary>A block whose stack size is zero: it covers no address. Declared first: the empty table is filled with it.</summary>
    private static readonly ReaderCounters* s_nobody = ReaderCounters.Allocate();

    /// <summary>
    /// A table whose every bucket holds <see cref="s_nobody"/>: the table of a domain before its
    /// first reader registers, and of every domain where the lookup is not supported. A lookup in
    /// it always misses, with no null test on the way.
    /// </summary>
    public static readonly nint EmptyTable = NewTable(out s_emptyTable);

    /// <summary>Keeps <see cref="EmptyTable"/>'s memory alive.</summary>
    private static readonly nint[] s_emptyTable;

    /// <summary>This thread's stack, once asked; a size of 0 if it could not be found.</summary>
    [ThreadStatic] private static nuint t_low, t_size;

    [ThreadStatic] private static bool t_rangeKnown;

    /// <summary>
    /// For the initial thread, the lowest address its stack may grow down to (the C library's
    /// report); 0 for every other thread, whose stack is all mapped from the start.
    /// </summary>
    [ThreadStatic] private static nuint t_growsDownTo;

    /// <summary>The first of this thread's armed blocks: the value its key holds.</summary>
    [ThreadStatic] private static ReaderCounters* t_armed;

    /// <summary>
    /// An address in the caller's stack frame: the address of a local. Inlined, so the local is the
    /// caller's; only the stack it lies in matters, not what it held.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    [SkipLocalsInit]  // only the anchor's address is used: zeroing it would be a store per call
    public static nuint CurrentStackPointer()
    {
        byte anchor;
        return (nuint)(&anchor);
    }

    /// <summary>The bucket of <paramref name="stackPointer"/> in a domain's table.</summary>
    public static nuint Bucket(nuint stackPointer) => (stackPointer >> BucketShift) & (Buckets - 1);

    /// <summary>
    /// A table for a domain: <see cref="Buckets"/> entries, each the block that no address finds.
    /// It is a pinned array, so its address never changes and it lives as long as its owner
    /// references <paramref name="array"/>: no finalizer frees it under a late reader.
    /// </summary>
    public static nint NewTable(out nint[] array)
    {
        array = GC.AllocateUninitializedArray<nint>(Buckets, pinned: true);
        array.AsSpan().Fill((nint)s_nobody);
        return (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
    }

    /// <summary>
    /// Gives <paramref name="block"/>, a block the calling thread now owns, the thread's stack range
    /// and links it where the thread's exit destructor will clear it. Does nothing where that cannot
    /// be done safely; the block then only serves the thread-static lookup.
    /// </summary>
    public static void Arm(ReaderCounters* block)
    {
        Volatile.Write(ref block->StackSize, 0);
        block->NextOfThread = null;
        if (!IsSupported)
            return;
        if (!t_rangeKnown)
        {
            (t_low, t_size, t_growsDownTo) = QueryStack();
            t_rangeKnown = true;
        }
        if (t_size == 0)
            return;
        // The C library empties the key before it calls the destructor. An armed thread whose key is
        // empty is exiting: a range set now would outlive it, so it stays unarmed.
        if (t_armed is not null && pthread_getspecific(s_key) != t_armed)
            return;
        block->NextOfThread = t_armed;
        if (pthread_setspecific(s_key, block) != 0)
            return;
        t_armed = block;
        // Last, the size: the block is found by stack address only once the destructor can reach
        // it, and only with this thread's own low end (Covers reads the size first).
        block->StackLow = t_low;
        Volatile.Write(ref block->StackSize, t_size);
    }

    /// <summary>The calling thread's stack, or a size of 0.</summary>
    internal static (nuint Low, nuint Size) QueryCurrentStack()
    {
        (nuint low, nuint size, _) = QueryStack();
        return (low, size);
    }

    /// <summary>
    /// The calling thread's stack, or a size of 0; for the initial thread, also how far down it may
    /// grow (else 0).
    /// </summary>
    private static (nuint Low, nuint Size, nuint GrowsDownTo) QueryStack()
    {
        // pthread_attr_t is 56 bytes on glibc and musl x86-64; the buffer leaves room.
        byte* attr = stackalloc byte[128];
        if (pthread_getattr_np(pthread_self(), attr) != 0)
            return (0, 0, 0);
        nint address;
        nuint size;
        int failed;
        try
        {
            failed = pthread_attr_getstack(attr, &address, &size);
        }
        finally
        {
            pthread_attr_destroy(attr);
        }
        if (failed != 0)
            return (0, 0, 0);
        nuint sp = CurrentStackPointer();
        nuint low = (nuint)address, high = (nuint)address + size;
        nuint growsDownTo = 0;
        // For the initial thread the C library reports where its stack may grow (up to the stack
        // limit, which can be unlimited), not memory it holds: another mapping, even a thread's
        // stack, may be placed there later. Only the part mapped now is surely this thread's.
        if (gettid() == Environment.ProcessId)
        {
            growsDownTo = low;
            (nuint mappedLow, nuint mappedHigh) = MappingOf(sp);
            low = Math.Max(low, mappedLow);
            high = Math.Min(high, mappedHigh);
        }
        if (high <= low || sp - low >= high - low)
            return (0, 0, 0);
        return (low, high - low, growsDownTo);
    }

    /// <summary>
    /// Called when the calling thread's stack pointer is not in its armed range. If this is the
    /// initial thread and its stack has grown down past the range since it was measured, widens
    /// the range of every block the thread armed to the stack's mapping now. True if it did.
    /// </summary>
    /// <remarks>
    /// The initial thread's range was cut to the mapping its stack had then; a thread that later
    /// runs deeper (a benchmark harness, a deep call chain) would otherwise miss the lookup on
    /// every section from there. Only growth is followed: an address below the range that lies in
    /// the stack's own mapping, which the kernel keeps clear of other mappings. Each widening
    /// reaches the deepest page touched so far, so it happens once per new depth.
    /// </remarks>
    public static bool TryWiden(nuint stackPointer)
    {
        if (!IsSupported || t_growsDownTo == 0 || t_size == 0 || stackPointer >= t_low || stackPointer < t_growsDownTo)
            return false;
        // As in Arm: a thread whose key was emptied is exiting, and its cleared blocks stay cleared.
        if (t_armed is null || pthread_getspecific(s_key) != t_armed)
            return false;
        nuint high = t_low + t_size;
        (nuint mappedLow, nuint mappedHigh) = MappingOf(stackPointer);
        if (mappedHigh == 0)
            return false;  // the map could not be read now; a later section asks again
        nuint low = Math.Max(mappedLow, t_growsDownTo);
        // The mapping must be the stack's: one mapping from the stack pointer up through the range.
        if (mappedHigh < high || low > stackPointer)
        {
            t_growsDownTo = 0;  // not the shape a growing stack has: stop asking, keep the range
            return false;
        }
        // Low end first, then the size (release), block by block: a reader on another thread reads
        // the size first, so it sees either the old range or the new one, or the new low end with
        // the old size, a range below the old top and inside this stack. Never more than the stack.
        for (ReaderCounters* block = t_armed; block is not null; block = block->NextOfThread)
        {
            block->StackLow = low;
            Volatile.Write(ref block->StackSize, high - low);
        }
        t_low = low;
        t_size = high - low;
        return true;
    }

    /// <summary>The calling thread's view of its stack, for diagnostics.</summary>
    internal static string DescribeThisThread()
    {
        int armed = 0;
        for (ReaderCounters* block = t_armed; block is not null; block = block->NextOfThread)
            armed++;
        return $"tid {gettid()} pid {Environment.ProcessId} sp 0x{CurrentStackPointer():x} range 0x{t_low:x}+0x{t_size:x} known {t_rangeKnown} growsDownTo 0x{t_growsDownTo:x} armed {armed} key {(pthread_getspecific(s_key) == t_armed ? "ok" : "differs")}";
    }

    /// <summary>
    /// Tests: makes the calling thread look like the initial thread whose stack was mapped only down
    /// to <paramref name="low"/> when it was measured (its armed range is cut there, and it may grow
    /// back down to where it really ends). The thread must have armed a block.
    /// </summary>
    internal static void CutRangeLikeTheInitialThreadsForTest(nuint low)
    {
        nuint high = t_low + t_size;
        if (t_size == 0 || low <= t_low || low >= high)
            throw new InvalidOperationException("the cut must lie inside the thread's armed range");
        t_growsDownTo = t_low;
        // Size first when shrinking: a reader never pairs the new low end with the old size.
        for (ReaderCounters* block = t_armed; block is not null; block = block->NextOfThread)
        {
            Volatile.Write(ref block->StackSize, high - low);
            block->StackLow = low;
        }
        t_low = low;
        t_size = high - low;
    }

    /// <summary>The mapping of this process that holds <paramref name="address"/>, from /proc/self/maps, or (0, 0).</summary>
    private static (nuint Low, nuint High) MappingOf(nuint address)
    {
        IEnumerable<string> lines;
        try
        {
            // Read whole: a sandbox without /proc, or one that denies it, just leaves this thread unarmed.
            lines = File.ReadAllLines("/proc/self/maps");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (0, 0);
        }
        foreach (string line in lines)
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash <= 0 || space <= dash
                || !ulong.TryParse(line.AsSpan(0, dash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong start)
                || !ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong end))
                continue;
            if (address >= start && address < end)
                return ((nuint)start, (nuint)end);
        }
        return (0, 0);
    }

    private static bool Initialize(out uint key)
    {
        key = 0;
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return false;
        if (AppContext.TryGetSwitch("ProbeGen.Srcu.DisableStackLookup", out bool disabled) && disabled)
            return false;
        try
        {
            nint stub = WriteExitStub();
            if (stub == 0)
                return false;
            uint created;
            if (pthread_key_create(&created, stub) != 0)
                return false;
            key = created;
            // Every other function once, here: one the C library lacks must turn the lookup off
            // now, not fail a reader's first section later.
            _ = pthread_setspecific(created, pthread_getspecific(created));
            // Kept for this thread's Arm, which would otherwise ask again (for the initial thread,
            // a read of /proc/self/maps).
            (t_low, t_size, t_growsDownTo) = QueryStack();
            t_rangeKnown = true;
            return true;
        }
        catch (Exception)
        {
            // Whatever failed (a missing library or function, anything else), readers keep the
            // thread-static lookup: this runs in a type initializer, and a throw there would break
            // every domain in the process.
            return false;
        }
    }

    /// <summary>
    /// The key's destructor: <c>while (b) { next = b->NextOfThread; b->StackSize = 0; b = next; }</c>
    /// as x86-64 machine code in a page of its own, made read-only and executable.
    /// </summary>
    /// <remarks>
    /// The link is read before the size is cleared. A block whose size shows zero may be recycled
    /// and relinked by another thread at once; x86 never moves a load after a later store, so by
    /// then the stub is done with that block. Were the link read after, a relinked block would send
    /// the stub into another thread's chain, and the dead thread's later blocks would keep their
    /// ranges after its stack is reused.
    /// </remarks>
    private static nint WriteExitStub()
    {
        ReadOnlySpan<byte> code =
        [
            0x48, 0x85, 0xFF,                                             // loop: test rdi, rdi
            0x74, 0x11,                                                   //       jz   done
            0x48, 0x8B, 0x47, ReaderCounters.NextOffset,                  //       mov  rax, [rdi+24]
            0x48, 0xC7, 0x47, ReaderCounters.StackSizeOffset, 0, 0, 0, 0,  //       mov  qword ptr [rdi+8], 0
            0x48, 0x89, 0xC7,                                             //       mov  rdi, rax
            0xEB, 0xEA,                                                   //       jmp  loop
            0xC3,                                                         // done: ret
        ];
        const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;
        nint page = mmap(0, 4096, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (page == -1)
            return 0;
        code.CopyTo(new Span<byte>((void*)page, code.Length));
        if (mprotect(page, 4096, ProtRead | ProtExec) != 0)
        {
            munmap(page, 4096);
            return 0;
        }
        return page;
    }

    [DllImport("libc")] private static extern nint mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);
    [DllImport("libc")] private static extern int mprotect(nint address, nuint length, int protection);
    [DllImport("libc")] private static extern int munmap(nint address, nuint length);
    [DllImport("libc")] private static extern int pthread_key_create(uint* key, nint destructor);
    [DllImport("libc")] private static extern int pthread_setspecific(uint key, void* value);
    [DllImport("libc")] private static extern void* pthread_getspecific(uint key);
    [DllImport("libc")] private static extern nuint pthread_self();
    [DllImport("libc")] private static extern int pthread_getattr_np(nuint thread, void* attr);
    [DllImport("libc")] private static extern int pthread_attr_getstack(void* attr, nint* address, nuint* size);
    [DllImport("libc")] private static extern int pthread_attr_destroy(void* attr);
    [DllImport("libc")] private static extern int gettid();
}
