using System.Runtime.CompilerServices;
using System.Threading;

namespace ProbeGen.Concurrency;

/// <summary>
/// One thread's registration with one <see cref="SrcuDomain"/>: its <see cref="ReaderCounters"/>
/// and who owns them, for the thread-static lookup and the grace-period scan.
/// </summary>
internal sealed unsafe class ReaderSlot
{
    /// <summary>The thread that owns the slot (see <see cref="MayBeUsed"/>).</summary>
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

    /// <summary>
    /// True while a section may still count itself here: the owner is alive, or a stack address
    /// still finds the counters. The owner's exit destructor clears their range soon after it is
    /// seen dead; until it has, the scan waits for them and the domain keeps them. Should it never
    /// run, a leaked count would stall grace periods rather than let a new thread on the old stack
    /// go unseen.
    /// </summary>
    public bool MayBeUsed => Owner.IsAlive || Volatile.Read(ref Counters->StackSize) != 0;

    /// <summary>True while the owner is inside a section under either index.</summary>
    public bool Active => (Volatile.Read(ref Counters->Count0) | Volatile.Read(ref Counters->Count1)) != 0;
}
