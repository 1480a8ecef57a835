using System.Runtime.CompilerServices;
using System.Threading;

namespace ProbeGen.Concurrency;

/// <summary>
/// A read-side section of an <see cref="SrcuDomain"/>, ended by <see cref="Dispose"/>.
/// </summary>
/// <remarks>
/// It is a <c>ref struct</c> on purpose: it cannot be stored in a field, boxed, or carried
/// across an <c>await</c>, so a section always ends on the thread that began it. Dispose it
/// exactly once; a copy disposed twice corrupts the thread's nesting count.
/// </remarks>
public ref struct SrcuReadGuard
{
    private ReaderSlot? _slot;
    private readonly int _index;

    internal SrcuReadGuard(ReaderSlot slot, int index)
    {
        _slot = slot;
        _index = index;
    }

    /// <summary>Exits the read-side section. A second call does nothing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Dispose()
    {
        ReaderSlot? slot = _slot;
        if (slot is null)
            return;
        _slot = null;
        ref int counter = ref slot.Counter(_index);
        // Release: the section's loads complete before the count drops. Pairs with the
        // Volatile.Read of the counter in SrcuDomain.WaitForReaders.
        Volatile.Write(ref counter, counter - 1);
    }
}
