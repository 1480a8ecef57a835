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
public unsafe ref struct SrcuReadGuard
{
    /// <summary>The thread's nesting counter this section counted itself under; it lives in native memory that is never freed.</summary>
    private int* _counter;

    /// <summary>The counter's value before this section entered.</summary>
    private readonly int _before;

    internal SrcuReadGuard(int* counter, int before)
    {
        _counter = counter;
        _before = before;
    }

    /// <summary>Exits the read-side section. A second call does nothing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Dispose()
    {
        int* counter = _counter;
        if (counter is null)
            return;
        _counter = null;
        // A decrement. When sections end in the reverse order they began (a using block always
        // does), the count is the one this section left, and the decremented value is the one it
        // found, already in a register: storing that instead keeps the exit out of the chain of
        // dependent loads and stores that back-to-back sections form on the counter, because the
        // comparison only feeds a predicted branch.
        int now = *counter;
        int after = now == _before + 1 ? _before : now - 1;
        // Release: the section's loads complete before the count drops. Pairs with the
        // Volatile.Read of the counter in SrcuDomain.WaitForReaders.
        Volatile.Write(ref *counter, after);
    }

    /// <summary>
    /// Exits a section that the caller knows is the thread's innermost open one: every section
    /// entered after it has ended. Then its counter holds exactly one more than it found, and the
    /// exit is a single store of the value it found.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void ExitInnermost()
    {
        System.Diagnostics.Debug.Assert(*_counter == _before + 1, "a section entered after this one is still open");
        // Release, as in Dispose.
        Volatile.Write(ref *_counter, _before);
        _counter = null;
    }
}
