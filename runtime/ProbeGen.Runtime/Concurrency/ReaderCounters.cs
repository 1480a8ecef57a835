using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace ProbeGen.Concurrency;

/// <summary>
/// One thread's read-side nesting counters for one <see cref="SrcuDomain"/>, in native memory
/// that never moves and is never freed (a domain recycles the block of a thread that has exited).
/// </summary>
/// <remarks>
/// <para>The block is 128-byte aligned and 128 bytes long, so two readers never share a cache line,
/// nor the pair of lines that a processor's adjacent-line prefetcher fetches together.
/// <see cref="Count0"/> and <see cref="Count1"/> are written only by the owning thread and read by
/// the grace-period scan.</para>
/// <para><see cref="StackLow"/> and <see cref="StackSize"/> name the owning thread's stack, so
/// that a reader can find its block from its stack pointer instead of a thread-static (see
/// <see cref="ThreadStacks"/>). The owner sets them when it arms the block, and only ever widens
/// them later (the initial thread, as its stack grows); native code sets the size to zero when
/// the owner exits, before its stack can be given to another thread. A thread whose stack pointer
/// lies in the range is therefore always the owner. A size of zero covers nothing.</para>
/// </remarks>
[StructLayout(LayoutKind.Sequential, Size = Size)]
internal unsafe struct ReaderCounters
{
    /// <summary>Bytes in a block, and its alignment: two cache lines.</summary>
    public const int Size = 128;

    /// <summary>The offset of <see cref="StackSize"/>, which the thread-exit stub clears.</summary>
    public const int StackSizeOffset = 8;

    /// <summary>The offset of <see cref="NextOfThread"/>, which the thread-exit stub follows.</summary>
    public const int NextOffset = 24;

    public int Count0;
    public int Count1;

    /// <summary>The bytes of the owner's stack from <see cref="StackLow"/>, or 0. Written last when set, first when cleared.</summary>
    public nuint StackSize;

    /// <summary>The lowest address of the owner's stack.</summary>
    public nuint StackLow;

    /// <summary>The owner's next block (of another domain), for the thread-exit stub.</summary>
    public ReaderCounters* NextOfThread;

    /// <summary>True when <paramref name="stackPointer"/> lies in the owner's stack.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Covers(nuint stackPointer)
    {
        // The size first (acquire), then the low end: the owner stores the low end before the size,
        // so a size read here comes with its own low end, never a previous owner's. One subtraction
        // and one unsigned compare: an address below the range wraps to a huge value.
        nuint size = Volatile.Read(ref StackSize);
        return stackPointer - StackLow < size;
    }

    /// <summary>Allocates a zeroed block.</summary>
    public static ReaderCounters* Allocate()
    {
        var block = (ReaderCounters*)NativeMemory.AlignedAlloc(Size, Size);
        *block = default;
        return block;
    }
}
