using System.Runtime.CompilerServices;
using System.Threading;

namespace ProbeGen.Concurrency;

/// <summary>
/// One thread's registration with one <see cref="SrcuDomain"/>: its <see cref="ReaderCounters"/>
/// and who owns them, for the thread-static lookup and the grace-period scan.
/// </summary>
internal sealed unsafe class ReaderSlot
{
    /// <summary>The thread that owns the slot; a slot of a dead thread is ignored by scans.</summary>
    public readonly Thread Owner;

    /// <summary>The domain the slot belongs to.</summary>
    public readonly SrcuDomain Domain;

    /// <summary>The counters, in native memory that outlives the slot (the domain recycles it).</summary>
    public readonly ReaderCounters* Counters;

    public ReaderSlot(SrcuDomain domain, Thread owner, ReaderCounters* counters)
    {
        Domain = domain;
        Owner = owner;
        Counters = counters;
    }

    /// <summary>The nesting counter of <paramref name="index"/> (0 or 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref int Counter(int index) => ref *(&Counters->Count0 + index);

    /// <summary>True while the owner is inside a section under either index.</summary>
    public bool Active => (Volatile.Read(ref Counters->Count0) | Volatile.Read(ref Counters->Count1)) != 0;
}
