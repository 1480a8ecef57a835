using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ProbeGen.Concurrency;

/// <summary>
/// One thread's read-side nesting counters for one <see cref="SrcuDomain"/>, in native memory
/// that never moves and is never freed (a domain recycles the block of a thread that has exited).
/// </summary>
/// <remarks>
/// <para>The block is 64-byte aligned and 64 bytes long, so two readers never share a cache line.
/// <see cref="Count0"/> and <see cref="Count1"/> are written only by the owning thread and read by
/// the grace-period scan.</para>
/// <para><see cref="StackRange"/> names the owning thread's stack, so that a reader can find its
/// block from its stack pointer instead of a thread-static (see <see cref="ThreadStacks"/>). It is
/// set once, by the owner, and cleared by native code when the owner exits, before its stack can
/// be given to another thread: a thread whose stack pointer lies in the range is therefore always
/// the owner. Zero never covers anything.</para>
/// </remarks>
[StructLayout(LayoutKind.Sequential, Size = Size)]
internal unsafe struct ReaderCounters
{
    /// <summary>Bytes in a block, and its alignment: one cache line.</summary>
    public const int Size = 64;

    /// <summary>The offset of <see cref="StackRange"/>, which the thread-exit stub clears.</summary>
    public const int StackRangeOffset = 8;

    /// <summary>The offset of <see cref="NextOfThread"/>, which the thread-exit stub follows.</summary>
    public const int NextOffset = 16;

    public int Count0;
    public int Count1;

    /// <summary>The owner's stack as <c>first page &lt;&lt; 28 | pages</c>, or 0. See <see cref="ThreadStacks.Encode"/>.</summary>
    public ulong StackRange;

    /// <summary>The owner's next block (of another domain), for the thread-exit stub.</summary>
    public ReaderCounters* NextOfThread;

    /// <summary>True when <paramref name="stackPointer"/> lies in the owner's stack.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool Covers(nuint stackPointer)
    {
        // One subtraction and one unsigned compare: a page below the range wraps to a huge value.
        ulong range = StackRange;
        return (stackPointer >> ThreadStacks.PageShift) - (range >> ThreadStacks.PagesBits) < (range & ThreadStacks.PagesMask);
    }

    /// <summary>Allocates a zeroed block.</summary>
    public static ReaderCounters* Allocate()
    {
        var block = (ReaderCounters*)NativeMemory.AlignedAlloc(Size, Size);
        *block = default;
        return block;
    }
}
