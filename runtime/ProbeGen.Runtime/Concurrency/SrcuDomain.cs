using System;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using ProbeGen.Internal;

namespace ProbeGen.Concurrency;

/// <summary>
/// A sleepable-RCU (SRCU) domain: cheap, nestable read-side sections, and update-side
/// operations that wait for every read-side section that could still see an object the
/// updater has just unpublished.
/// </summary>
/// <remarks>
/// <para><b>Reader contract</b> (liburcu-style):</para>
/// <list type="bullet">
/// <item>A reader calls <see cref="Enter"/> and disposes the returned guard on the same thread,
/// on every path (<c>using var _ = domain.Enter();</c>). Sections nest.</item>
/// <item>Inside a section a reader may load pointers that an updater publishes and use the
/// objects they point to until the section ends.</item>
/// <item>A reader may block, but every moment it spends in a section delays every
/// <see cref="Synchronize"/> and every deferred callback of the domain.</item>
/// <item>A reader must never call <see cref="Synchronize"/> or <see cref="Barrier"/> of the same
/// domain: it would wait for itself. Both throw <see cref="InvalidOperationException"/> there.</item>
/// <item>A domain may name an update-side lock that its readers take (the probe handlers' domain
/// names the probe writer lock, which a handler's deferred detach takes). Nobody may wait for a
/// grace period while holding that lock: the wait would need a reader that needs the lock.
/// <see cref="Synchronize"/> and <see cref="Barrier"/> throw <see cref="InvalidOperationException"/>
/// on a thread that holds it, whether or not such a reader is running at that moment.</item>
/// </list>
/// <para><b>What <see cref="Synchronize"/> waits for:</b> every read-side section of this
/// domain that began before the call. It does not wait for sections that began after it
/// started, nor for deferred callbacks (that is <see cref="Barrier"/>), nor for sections of
/// other domains.</para>
/// <para><b>Cost.</b> The read side writes only the calling thread's own slot (no shared cache
/// line, no interlocked instruction). On x64 Linux it finds that slot from its stack pointer
/// (<see cref="ThreadStacks"/>) rather than through a thread-static, which there costs a call.
/// The update side pays instead: it issues
/// <see cref="Interlocked.MemoryBarrierProcessWide"/>, which makes every thread execute a full
/// fence, so readers can get away with compiler-level ordering. This is the asymmetric scheme
/// of liburcu's membarrier flavour.</para>
/// <para><b>Platform requirement.</b> The scheme is sound only where
/// <see cref="Interlocked.MemoryBarrierProcessWide"/> really fences every other CPU: on Linux the
/// runtime uses <c>membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)</c>; its fallback (an
/// <c>mprotect</c> trick) is known not to fence other cores on ARM64. x64 is sound either way.</para>
/// <para><b>Algorithm.</b> Each reader slot has two nesting counters, one per index. A reader
/// increments the counter of the domain's current index. <see cref="Synchronize"/> is
/// two-phase, like the kernel's SRCU index flip: it first waits until the inactive index has
/// no readers (late readers that loaded it before an earlier flip), then flips the current
/// index and waits until the old one drains. New readers always land on the current index,
/// so a stream of them cannot starve a grace period.</para>
/// </remarks>
public sealed unsafe class SrcuDomain
{
    private static int s_nextId = -1;

    /// <summary>
    /// This thread's reader slot for each domain, indexed by <see cref="_id"/>.
    /// Written and read only by the owning thread.
    /// </summary>
    [ThreadStatic] private static ReaderSlot?[]? t_slots;

    /// <summary>This thread's most recently used slot, of any domain. Owned by the thread.</summary>
    [ThreadStatic] private static ReaderSlot? t_lastSlot;

    /// <summary>The domain whose reclaimer runs on this thread, if any.</summary>
    [ThreadStatic] private static SrcuDomain? t_reclaimerOf;

    /// <summary>Sections this thread began through the thread-static lookup, for tests.</summary>
    [ThreadStatic] private static int t_slowEnters;

    private readonly int _id;

    /// <summary>
    /// The update-side lock that read-side sections may take, or null. Set at construction; read by
    /// <see cref="Synchronize"/> and <see cref="Barrier"/>, which refuse to wait while the calling
    /// thread holds it.
    /// </summary>
    private readonly Lock? _lockReadersTake;

    /// <summary>
    /// The index (0 or 1) new readers count themselves under. Written only by
    /// <see cref="Synchronize"/> under <see cref="_gracePeriodLock"/>; read locklessly by
    /// <see cref="Enter"/>.
    /// </summary>
    private int _currentIndex;

    /// <summary>
    /// Every thread's reader slot. Replaced whole (copy-on-write) under <see cref="_slotsLock"/>;
    /// read locklessly by the grace-period scan.
    /// </summary>
    private ReaderSlot[] _slots = [];

    /// <summary>
    /// Counters of exited threads, zero and no longer found by any stack address, for the next
    /// thread that registers. Changed under <see cref="_slotsLock"/>.
    /// </summary>
    private readonly System.Collections.Generic.Stack<nint> _freeCounters = new();

    /// <summary>
    /// Each thread's counters by the 64 KB bucket of its stack pointer (<see cref="ThreadStacks"/>).
    /// <see cref="ThreadStacks.EmptyTable"/> until the first reader registers where the lookup is
    /// supported, and always where it is not; then the data of <see cref="_stackTableArray"/>. An
    /// entry is a hint: a reader uses it only if the counters' range covers its own stack pointer,
    /// so a thread whose stack shares the bucket just misses.
    /// </summary>
    private nint _stackTable = ThreadStacks.EmptyTable;

    /// <summary>The pinned array behind <see cref="_stackTable"/>, kept alive with the domain.</summary>
    private nint[]? _stackTableArray;

    private readonly Lock _slotsLock = new();

    /// <summary>Serializes grace periods: one index flip at a time.</summary>
    private readonly Lock _gracePeriodLock = new();

    /// <summary>Deferred callbacks, in the order <see cref="Defer"/> queued them.</summary>
    private readonly ConcurrentQueue<Action> _deferred = new();

    /// <summary>1 while a reclaimer thread is draining <see cref="_deferred"/>; set and cleared with interlocked operations.</summary>
    private int _reclaimerRunning;

    private long _gracePeriods;
    private long _callbacksRun;
    private long _callbackFailures;
    private Exception? _lastCallbackFailure;

    /// <summary>Creates a domain. Name it for the lifetime it covers.</summary>
    /// <param name="name">What the domain protects, for diagnostics.</param>
    public SrcuDomain(string name)
        : this(name, lockReadersTake: null)
    {
    }

    /// <summary>Creates a domain whose readers may take <paramref name="lockReadersTake"/>.</summary>
    /// <param name="name">What the domain protects, for diagnostics.</param>
    /// <param name="lockReadersTake">
    /// A lock that read-side sections may take. Waiting for a grace period while holding it would
    /// deadlock as soon as a reader blocks on it, so <see cref="Synchronize"/> and
    /// <see cref="Barrier"/> throw on a thread that holds it.
    /// </param>
    internal SrcuDomain(string name, Lock? lockReadersTake)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Name = name;
        _lockReadersTake = lockReadersTake;
        _id = Interlocked.Increment(ref s_nextId);
    }

    /// <summary>What this domain protects.</summary>
    public string Name { get; }

    /// <summary>Grace periods completed so far.</summary>
    public long GracePeriods => Volatile.Read(ref _gracePeriods);

    /// <summary>Deferred callbacks that have run (including those that threw).</summary>
    public long DeferredCallbacksRun => Volatile.Read(ref _callbacksRun);

    /// <summary>Deferred callbacks that threw. The reclaimer contains the exception and goes on.</summary>
    public long DeferredCallbackFailures => Volatile.Read(ref _callbackFailures);

    /// <summary>The most recent exception thrown by a deferred callback, if any.</summary>
    public Exception? LastDeferredCallbackFailure => Volatile.Read(ref _lastCallbackFailure);

    /// <summary>True when the calling thread is inside a read-side section of this domain.</summary>
    public bool ReadOngoing
    {
        get
        {
            ReaderSlot? slot = TryGetSlot();
            return slot is not null && slot.Active;
        }
    }

    /// <summary>
    /// Enters a read-side section. Dispose the guard on the same thread to exit it.
    /// Never writes memory another thread writes. It waits for nothing but, once per thread, its
    /// registration (a short lock), and on the initial thread, once per new stack depth, a read of
    /// the process's memory map (<see cref="ThreadStacks.TryWiden"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public SrcuReadGuard Enter()
    {
        nuint stackPointer = ThreadStacks.CurrentStackPointer();
        ReaderCounters* counters = *Bucket(stackPointer);
        if (!counters->Covers(stackPointer))
        {
            // Where the stack lookup is not supported, this is the thread-static lookup inlined,
            // as it always was there.
            counters = ThreadStacks.IsSupported ? CountersOfThisThread(stackPointer) : (TryGetSlot() ?? RegisterThisThread()).Counters;
        }
        // Always 0 or 1: Synchronize only ever stores the other of the two.
        int index = Volatile.Read(ref _currentIndex);
        // Between the index load and the increment a grace period may flip the index: this is the
        // late reader that phase 1 of Synchronize exists for.
        if (TestHooks.Enabled)
            TestHooks.Hit(HookPoint.SrcuReaderIndexLoaded, this);
        // Pointer arithmetic rather than &counters->Count0, which would add a null check.
        int* counter = (int*)counters + (uint)index;
        // Only this thread writes its counter, so a plain read-modify-write is enough. The store
        // must be ordered before the section's loads (StoreLoad), and no volatile store gives
        // that: the grace-period scan's MemoryBarrierProcessWide does, by making this thread
        // execute a full fence (see WaitForReaders). The volatile store only keeps the JIT from
        // moving the increment across the section's volatile loads of published pointers.
        int before = *counter;
        Volatile.Write(ref *counter, before + 1);
        return new SrcuReadGuard(counter, before);
    }

    /// <summary>
    /// The calling thread's counters, found by its stack pointer without a thread-static, or null
    /// (not supported here, nothing published under this bucket, or another thread's counters).
    /// </summary>
    private ReaderCounters* CountersOnStack()
    {
        nuint stackPointer = ThreadStacks.CurrentStackPointer();
        ReaderCounters* counters = *Bucket(stackPointer);
        return counters->Covers(stackPointer) ? counters : null;
    }

    /// <summary>The entry of <see cref="_stackTable"/> for <paramref name="stackPointer"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReaderCounters** Bucket(nuint stackPointer) => (ReaderCounters**)_stackTable + ThreadStacks.Bucket(stackPointer);

    /// <summary>
    /// The calling thread's counters through the thread-static lookup (registering the thread on
    /// its first section), published under the bucket of <paramref name="stackPointer"/>, the
    /// caller's, for its next section. This frame's own address could lie in the next bucket down.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private ReaderCounters* CountersOfThisThread(nuint stackPointer)
    {
        t_slowEnters++;
        ReaderCounters* counters = (TryGetSlot() ?? RegisterThisThread()).Counters;
        PublishOnStack(counters, stackPointer);
        return counters;
    }

    /// <summary>Publishes the calling thread's <paramref name="counters"/> under the bucket of its stack pointer.</summary>
    private void PublishOnStack(ReaderCounters* counters, nuint stackPointer)
    {
        // Only a block armed with this thread's own stack is published, so another thread can never
        // take it for its own. A thread whose stack shares the bucket may overwrite the entry; each
        // then takes the slow path now and then, which costs time, never safety. An armed block
        // means this domain has a table of its own: the shared empty one is never written. The
        // initial thread's range may need widening first, if its stack has grown since it was measured.
        if (counters->Covers(stackPointer) || (ThreadStacks.TryWiden(stackPointer) && counters->Covers(stackPointer)))
            Volatile.Write(ref *(nint*)Bucket(stackPointer), (nint)counters);
    }

    /// <summary>
    /// Waits until every read-side section of this domain that began before the call has ended.
    /// </summary>
    /// <exception cref="InvalidOperationException">The calling thread is inside a read-side section of this domain, or holds the lock its readers take.</exception>
    public void Synchronize()
    {
        if (ReadOngoing)
            ThrowHelper.ThrowSynchronizeInReadSection(Name);
        if (_lockReadersTake?.IsHeldByCurrentThread == true)
            ThrowHelper.ThrowGracePeriodWaitUnderWriterLock(nameof(Synchronize), Name);

        lock (_gracePeriodLock)
        {
            int current = _currentIndex;
            // Phase 1: readers that loaded the inactive index before an earlier flip and
            // incremented it late. They may hold objects unpublished before this call.
            WaitForReaders(current ^ 1);
            // Flip: every reader that starts from now on counts itself under the other index,
            // so the old index can only drain.
            Volatile.Write(ref _currentIndex, current ^ 1);
            // Phase 2: readers that entered under the old index.
            WaitForReaders(current);
            Volatile.Write(ref _gracePeriods, _gracePeriods + 1);
        }
    }

    /// <summary>
    /// Queues <paramref name="callback"/> to run on a background reclaimer thread after a full
    /// grace period that starts after this call (call_srcu). Returns at once. Safe to call from
    /// inside a read-side section.
    /// </summary>
    /// <param name="callback">The work to run; an exception it throws is counted and contained.</param>
    public void Defer(Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        _deferred.Enqueue(callback);
        // Full fence (interlocked), pairing with the Interlocked.Exchange in RunReclaimer: either
        // we see the reclaimer gone and start one, or the reclaimer sees our callback queued.
        if (Interlocked.CompareExchange(ref _reclaimerRunning, 1, 0) == 0)
        {
            try
            {
                StartReclaimer();
            }
            catch
            {
                // No thread could be started: hand the flag back so the next Defer tries again.
                Volatile.Write(ref _reclaimerRunning, 0);
                throw;
            }
        }
    }

    /// <summary>
    /// Waits until every callback passed to <see cref="Defer"/> before this call has run
    /// (srcu_barrier).
    /// </summary>
    /// <exception cref="InvalidOperationException">Called inside a read-side section of this domain, from one of its deferred callbacks, or while holding the lock its readers take.</exception>
    public void Barrier()
    {
        if (ReadOngoing)
            ThrowHelper.ThrowBarrierInReadSection(Name);
        if (_lockReadersTake?.IsHeldByCurrentThread == true)
            ThrowHelper.ThrowGracePeriodWaitUnderWriterLock(nameof(Barrier), Name);
        if (ReferenceEquals(t_reclaimerOf, this))
            ThrowHelper.ThrowBarrierFromCallback(Name);

        // The queue is FIFO and one reclaimer drains it in order, so a marker queued now runs
        // after every callback queued before it.
        using var done = new ManualResetEventSlim(false);
        Defer(done.Set);
        done.Wait();
    }

    /// <summary>True on the thread that runs this domain's deferred callbacks.</summary>
    internal bool OnReclaimerThread => ReferenceEquals(t_reclaimerOf, this);

    /// <summary>The index new readers count themselves under, for tests.</summary>
    /// <summary>What the stack lookup finds for the calling thread, for diagnostics.</summary>
    internal string DescribeLookupOfThisThread()
    {
        nuint sp = ThreadStacks.CurrentStackPointer();
        ReaderCounters* inBucket = *Bucket(sp);
        nint mine = CountersAddressOfThisThread;
        (nuint low, nuint size) = mine == 0 ? (0, 0) : StackOf(mine);
        return $"{ThreadStacks.DescribeThisThread()}; domain '{Name}': bucket holds 0x{(nint)inBucket:x} (mine 0x{mine:x}, 0x{low:x}+0x{size:x}), covers {inBucket->Covers(sp)}, slow enters {t_slowEnters}";
    }

    /// <summary>Sections the calling thread began without finding its counters by stack address.</summary>
    internal static int SlowEntersOfThisThread => t_slowEnters;

    internal int CurrentIndex => Volatile.Read(ref _currentIndex);

    /// <summary>The calling thread's counters, or 0 before its first section, for tests.</summary>
    internal nint CountersAddressOfThisThread => TryGetSlot() is { } slot ? (nint)slot.Counters : 0;

    /// <summary>True when the calling thread's next section finds its counters by stack address, for tests.</summary>
    internal bool FindsThisThreadOnStack => CountersAddressOfThisThread is var mine and not 0 && (nint)CountersOnStack() == mine;

    /// <summary>The stack of the counters at <paramref name="counters"/> (a size of 0 once their thread has exited), for tests.</summary>
    internal static (nuint Low, nuint Size) StackOf(nint counters) =>
        (((ReaderCounters*)counters)->StackLow, Volatile.Read(ref ((ReaderCounters*)counters)->StackSize));

    /// <summary>The number of reader slots (threads that have ever entered), for tests and diagnostics.</summary>
    internal int ReaderSlotCount => Volatile.Read(ref _slots).Length;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReaderSlot? TryGetSlot()
    {
        // Most threads read one domain (the probe handlers' one): a one-entry cache spares the
        // array lookup. The thread-static access itself is the read side's main cost.
        ReaderSlot? last = t_lastSlot;
        if (last is not null && ReferenceEquals(last.Domain, this))
            return last;
        return TryGetSlotSlow();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ReaderSlot? TryGetSlotSlow()
    {
        ReaderSlot?[]? slots = t_slots;
        int id = _id;
        ReaderSlot? slot = slots is not null && (uint)id < (uint)slots.Length ? slots[id] : null;
        if (slot is not null)
            t_lastSlot = slot;
        return slot;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ReaderSlot RegisterThisThread()
    {
        ReaderSlot?[]? slots = t_slots;
        if (slots is null || slots.Length <= _id)
        {
            Array.Resize(ref slots, Math.Max(_id + 1, (slots?.Length ?? 4) * 2));
            t_slots = slots;
        }
        ReaderSlot slot;
        lock (_slotsLock)
        {
            if (_stackTable == ThreadStacks.EmptyTable && ThreadStacks.IsSupported)
                Volatile.Write(ref _stackTable, ThreadStacks.NewTable(out _stackTableArray));
            ReaderSlot[] old = _slots;
            // Drop slots no section can use any more: their thread has exited, and no stack address
            // finds their counters.
            int live = 0;
            foreach (ReaderSlot s in old)
                if (s.MayBeUsed) live++;
            var next = new ReaderSlot[live + 1];
            int i = 0;
            foreach (ReaderSlot s in old)
            {
                if (s.MayBeUsed)
                    next[i++] = s;
                else if (Recyclable(s.Counters))
                    _freeCounters.Push((nint)s.Counters);
            }
            ReaderCounters* counters = _freeCounters.Count > 0 ? (ReaderCounters*)_freeCounters.Pop() : ReaderCounters.Allocate();
            ThreadStacks.Arm(counters);
            slot = new ReaderSlot(this, Thread.CurrentThread, counters);
            next[i] = slot;
            // Publish the slot before this thread can increment it: a scan that started earlier
            // will not see it, which is fine, because this thread is not yet a reader then.
            Volatile.Write(ref _slots, next);
        }
        slots[_id] = slot;
        t_lastSlot = slot;
        return slot;
    }

    /// <summary>
    /// True if counters no section can use can serve another thread: both counts are zero (a
    /// thread that died inside a section leaves its count, and its block is abandoned). The exit
    /// destructor reads a block's link before it clears the size, so a block whose size is zero
    /// is already behind it.
    /// </summary>
    private static bool Recyclable(ReaderCounters* counters) => counters->Count0 == 0 && counters->Count1 == 0;

    /// <summary>Waits until no reader counts itself under <paramref name="index"/>. Caller holds <see cref="_gracePeriodLock"/>.</summary>
    private void WaitForReaders(int index)
    {
        // Orders the updater's earlier stores (the unpublishing of what it wants to reclaim, and
        // the index flip) before the scan, and forces every reader thread through a full fence.
        // Pairs with the volatile counter increment in Enter: a reader whose increment is not
        // visible to the scan below passed its fence after our stores, so its section cannot
        // see what we unpublished; a reader whose increment is visible is waited for.
        Interlocked.MemoryBarrierProcessWide();
        ReaderSlot[] slots = Volatile.Read(ref _slots);
        foreach (ReaderSlot slot in slots)
        {
            // Volatile read pairs with the volatile decrement in SrcuReadGuard.Dispose: once we
            // see the count drop, the reader's section loads are complete.
            if (Volatile.Read(ref slot.Counter(index)) == 0)
                continue;
            var spin = new SpinWait();
            while (Volatile.Read(ref slot.Counter(index)) != 0 && slot.MayBeUsed)
            {
                // Reported on every round, so a test can tell "still waiting for this reader"
                // from "not started yet" without guessing with a timeout.
                if (TestHooks.Enabled)
                    TestHooks.Hit(HookPoint.SrcuWaitingForReader, slot);
                spin.SpinOnce(sleep1Threshold: 30);
            }
        }
    }

    /// <summary>How long the reclaimer lets deferred callbacks gather before it starts a grace period for them.</summary>
    private const int ReclaimBatchDelayMilliseconds = 1;

    private void StartReclaimer()
    {
        var thread = new Thread(RunReclaimer)
        {
            IsBackground = true,
            Name = $"SRCU reclaimer ({Name})",
        };
        thread.UnsafeStart();
    }

    private void RunReclaimer()
    {
        t_reclaimerOf = this;
        var batch = new System.Collections.Generic.List<Action>();
        while (true)
        {
            while (_deferred.TryDequeue(out Action? callback))
                batch.Add(callback);

            if (batch.Count > 0)
            {
                // Let more callbacks gather first, as call_srcu does: under a writer that churns,
                // one grace period then serves a whole batch, instead of grace periods running
                // back to back, each forcing a fence on every reader thread and scanning their
                // counters while they run.
                Thread.Sleep(ReclaimBatchDelayMilliseconds);
                while (_deferred.TryDequeue(out Action? callback))
                    batch.Add(callback);
                // Every callback in the batch was queued before this grace period began.
                Synchronize();
                foreach (Action callback in batch)
                    RunCallback(callback);
                batch.Clear();
                continue;
            }

            // Full fence, pairing with the CompareExchange in Defer (see there).
            Interlocked.Exchange(ref _reclaimerRunning, 0);
            if (_deferred.IsEmpty || Interlocked.CompareExchange(ref _reclaimerRunning, 1, 0) != 0)
                return;
        }
    }

    private void RunCallback(Action callback)
    {
        try
        {
            callback();
        }
        catch (Exception ex)
        {
            Interlocked.Increment(ref _callbackFailures);
            Volatile.Write(ref _lastCallbackFailure, ex);
        }
        finally
        {
            Interlocked.Increment(ref _callbacksRun);
        }
    }
}
