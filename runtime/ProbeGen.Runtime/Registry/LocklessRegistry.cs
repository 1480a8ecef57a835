using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using ProbeGen.Concurrency;
using ProbeGen.Internal;

namespace ProbeGen.Registry;

/// <summary>
/// An ordered, keyed set of <typeparamref name="TEntry"/> with lockless point and range lookups,
/// serialized writers, and SRCU reclamation of removed entries: the C# shape of the kernel's
/// <c>find_uprobe()</c> after it was RCU-ified.
/// </summary>
/// <remarks>
/// <para><b>Structure.</b> Point lookups go through an open-addressing hash table that writers
/// change in place (linear probing, backward-shift deletion). Moving an entry during a deletion
/// can make a concurrent reader walk past it: a lockless lookup may report a false miss, never a
/// false hit. Range lookups walk a sorted snapshot: a write only drops it (a write stays O(1),
/// even with a writer churning thousands of entries), and the next range lookup rebuilds it once,
/// under the writer lock. Range lookups are for the cold paths (attach by pattern, listing).</para>
/// <para><b>Seqcount.</b> Writers run under one lock and make the sequence odd for the length of
/// each change. A lookup that finds a live entry returns it at once ("if they find something,
/// it's good"); a miss is validated: retried only if the sequence was odd or moved meanwhile.</para>
/// <para><b>Lifetime.</b> A found entry may already be dead: removed, and its last reference
/// dropped. <see cref="Find"/> and <see cref="TryAcquire"/> take it only after a liveness check
/// (<see cref="RegistryEntry{TKey}.TryAddRef"/> is "increment if not zero") and count a dead
/// entry as a miss, so the resurrection interleaving from the review cannot hand it out.
/// Dead entries are reclaimed after a grace period of <see cref="Domain"/>.</para>
/// <para><b>Reader contract.</b> <see cref="Find"/> and <see cref="Range"/> return entries that
/// stay usable until the caller's read-side section of <see cref="Domain"/> ends. To keep one
/// longer, use <see cref="TryAcquire"/> and release it.</para>
/// </remarks>
/// <typeparam name="TKey">The key: ordered by the comparer, hashed by the equality comparer.</typeparam>
/// <typeparam name="TEntry">The entries.</typeparam>
public sealed class LocklessRegistry<TKey, TEntry> : IRegistryOwner
    where TKey : notnull
    where TEntry : RegistryEntry<TKey>
{
    private const int MinCapacity = 16;

    private readonly IComparer<TKey> _order;
    /// <summary>
    /// Key equality and hash; null for value-type keys with the default comparer, so that
    /// <see cref="KeyHash"/> and <see cref="KeysEqual"/> call <see cref="EqualityComparer{T}.Default"/>
    /// directly and the JIT devirtualizes and inlines it, as ConcurrentDictionary does.
    /// </summary>
    private readonly IEqualityComparer<TKey>? _equality;

    /// <summary>Serializes writers. Readers never take it.</summary>
    private readonly Lock _writeLock = new();

    /// <summary>
    /// Seqcount: odd while a writer changes <see cref="_table"/>. Written only under
    /// <see cref="_writeLock"/> (volatile stores); read locklessly by point lookups.
    /// </summary>
    private int _sequence;

    /// <summary>
    /// The hash table. Its slots are changed in place under <see cref="_writeLock"/>; the table
    /// itself is replaced (volatile store) on resize. Read locklessly.
    /// </summary>
    private Slot[] _table = new Slot[MinCapacity];

    /// <summary>
    /// A table slot: the entry, with its hash beside it, so a probe compares hashes without
    /// loading each entry it passes. Writers store the hash, then the entry (release); a reader
    /// loads the entry (acquire), then the hash. A hash that belongs to a newer entry can only
    /// cause a miss, which the seqcount validates; a hit is always confirmed on the entry's key.
    /// </summary>
    private struct Slot
    {
        public TEntry? Entry;
        public int Hash;
    }

    /// <summary>Entries in <see cref="_table"/>. Written under <see cref="_writeLock"/>; read locklessly by <see cref="Count"/>.</summary>
    private int _count;

    /// <summary>
    /// Linked entries sorted by <see cref="_order"/>, or null after a write. Immutable; dropped by
    /// every write and rebuilt by <see cref="Sorted"/>, both under <see cref="_writeLock"/>; read
    /// locklessly by range lookups.
    /// </summary>
    private TEntry[]? _sorted = [];

    /// <summary>Creates a registry.</summary>
    /// <param name="domain">The SRCU domain that covers lockless readers of this registry.</param>
    /// <param name="order">Key order for range lookups; <see cref="Comparer{T}.Default"/> when null.</param>
    /// <param name="equality">Key equality and hash for point lookups; <see cref="EqualityComparer{T}.Default"/> when null.</param>
    public LocklessRegistry(SrcuDomain domain, IComparer<TKey>? order = null, IEqualityComparer<TKey>? equality = null)
    {
        ArgumentNullException.ThrowIfNull(domain);
        Domain = domain;
        _order = order ?? Comparer<TKey>.Default;
        if (typeof(TKey).IsValueType)
            _equality = equality is null || ReferenceEquals(equality, EqualityComparer<TKey>.Default) ? null : equality;
        else
            _equality = equality ?? EqualityComparer<TKey>.Default;
    }

    /// <summary>The SRCU domain that covers lockless readers; dead entries are reclaimed after its grace periods.</summary>
    public SrcuDomain Domain { get; }

    /// <summary>The number of linked entries (a snapshot).</summary>
    public int Count => Volatile.Read(ref _count);

    private long _retries;

    /// <summary>Lookups that missed while a writer moved the sequence and so ran again, for diagnostics and benchmarks.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    /// <summary>The seqcount, for tests and diagnostics.</summary>
    public int Sequence => Volatile.Read(ref _sequence);

    /// <summary>
    /// Finds the live entry with <paramref name="key"/>, without taking a reference. Call it inside
    /// a read-side section of <see cref="Domain"/>; the entry stays usable until the section ends.
    /// </summary>
    /// <returns>The entry, or null if there is no live entry with that key.</returns>
    public TEntry? Find(TKey key) => Lookup(key, takeReference: false);

    /// <summary>
    /// Finds the live entry with <paramref name="key"/> and takes a reference to it with
    /// "increment if not zero". Safe outside a read-side section; the caller releases the reference.
    /// </summary>
    /// <param name="key">The key to look up.</param>
    /// <param name="entry">The entry, with a reference the caller now owns.</param>
    /// <returns>True if a live entry was found and referenced.</returns>
    public bool TryAcquire(TKey key, out TEntry? entry)
    {
        using SrcuReadGuard guard = Domain.Enter();
        entry = Lookup(key, takeReference: true);
        return entry is not null;
    }

    /// <summary>
    /// find_uprobe(): a seqcount-validated lockless lookup that takes only a live entry. Inlined
    /// into <see cref="Find"/> and <see cref="TryAcquire"/>, so each gets its own copy. Only the
    /// first attempt is inlined: a retry happens only during a write, and keeping its loop and its
    /// spinner out of line leaves the caller's loop its registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private TEntry? Lookup(TKey key, bool takeReference)
    {
        if (!typeof(TKey).IsValueType || _equality is not null)
            return LookupWithComparer(key, takeReference);
        int hash = EqualityComparer<TKey>.Default.GetHashCode(key!);
        int sequence = Volatile.Read(ref _sequence);
        if (TryTake(FindLinkedOrDead(key, hash, defaultEquality: true), takeReference) is { } found)
            return found;
        // "Lockless lookups are prone to false negatives. If they find something, it's good.
        // If they do not find, it needs to be validated."
        return SequenceMoved(sequence) ? LookupAgain(key, hash, takeReference) : null;
    }

    /// <summary>The first attempt of a lookup with a comparer (or a reference-type key): out of line, so its calls stay out of the caller's loop.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private TEntry? LookupWithComparer(TKey key, bool takeReference)
    {
        int hash = KeyHash(key);
        int sequence = Volatile.Read(ref _sequence);
        if (TryTake(FindLinkedOrDead(key, hash), takeReference) is { } found)
            return found;
        return SequenceMoved(sequence) ? LookupAgain(key, hash, takeReference) : null;
    }

    /// <summary>The lookup's retries, after a miss that a write may have caused.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private TEntry? LookupAgain(TKey key, int hash, bool takeReference)
    {
        var spin = new SpinWait();
        while (true)
        {
            // Only a miss during a write gets here, so the count costs nothing on a lookup's usual path.
            Interlocked.Increment(ref _retries);
            spin.SpinOnce(sleep1Threshold: -1);
            int sequence = Volatile.Read(ref _sequence);
            if (TryTake(FindLinkedOrDead(key, hash), takeReference) is { } found)
                return found;
            if (!SequenceMoved(sequence))
                return null;
        }
    }

    /// <summary>The entry a lookup found, if it is still live (and, if asked, referenced); else null.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TEntry? TryTake(TEntry? found, bool takeReference)
    {
        if (found is null)
            return null;
        if (TestHooks.Enabled)
            TestHooks.Hit(HookPoint.RegistryFoundBeforeAcquire, found);
        // The race from the review is decided here. The writer that removed the entry and dropped
        // its last reference wins: the count is already zero, so the liveness check (or
        // TryAddRef's "increment if not zero") fails and we treat the entry as a miss. An
        // unconditional increment would move the count from 0 to 1 and hand out an entry whose
        // reclamation is already queued. A dead entry was unlinked before its last reference went,
        // and that unlink moved the sequence, so the miss is validated like any other and retried.
        return (takeReference ? found.TryAddRef() : found.IsAlive) ? found : null;
    }

    /// <summary>
    /// Enumerates live entries with <paramref name="low"/> ≤ key &lt; <paramref name="high"/>, in key
    /// order, from a snapshot taken at the call. Use inside a read-side section of <see cref="Domain"/>.
    /// </summary>
    public RangeEnumerable Range(TKey low, TKey high)
    {
        // One read: the start index must come from the snapshot that is enumerated.
        TEntry[] sorted = Sorted();
        return new(sorted, LowerBound(sorted, low), high, _order);
    }

    /// <summary>Enumerates every live entry in key order, from a snapshot taken at the call.</summary>
    public IReadOnlyList<TEntry> Snapshot() => Array.FindAll(Sorted(), e => e.IsAlive);

    /// <summary>
    /// The sorted snapshot, rebuilt under the writer lock if a write dropped it. Writers never wait
    /// for a grace period while they hold that lock, so taking it inside a read-side section is safe.
    /// </summary>
    private TEntry[] Sorted()
    {
        if (Volatile.Read(ref _sorted) is { } sorted)
            return sorted;
        lock (_writeLock)
        {
            if (_sorted is { } built)
                return built;
            var linked = new List<TEntry>(_count);
            foreach (Slot slot in _table)
            {
                if (slot.Entry is { } entry)
                    linked.Add(entry);
            }
            TEntry[] rebuilt = [.. linked];
            Array.Sort(rebuilt, (a, b) => _order.Compare(a.Key, b.Key));
            Volatile.Write(ref _sorted, rebuilt);
            return rebuilt;
        }
    }

    /// <summary>Inserts <paramref name="entry"/>, which takes the registry's reference.</summary>
    /// <exception cref="ArgumentException">An entry with the same key is linked.</exception>
    /// <exception cref="InvalidOperationException">The entry was inserted before (it may be dead, and is never revived).</exception>
    public void Add(TEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (!TryAdd(entry))
            ThrowHelper.ThrowDuplicateKey(entry.Key);
    }

    /// <summary>Inserts <paramref name="entry"/> unless an entry with the same key is linked.</summary>
    /// <returns>False if the key was taken.</returns>
    public bool TryAdd(TEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        int hash = KeyHash(entry.Key);
        lock (_writeLock)
        {
            if (FindSlotUnderLock(entry.Key, hash) >= 0)
                return false;
            // Everything that allocates happens before the write section, so a failure cannot
            // leave the sequence odd (every lockless miss would spin forever). A resize needs no
            // section: readers of the old table see it complete, and so do readers of the new one.
            if ((_count + 1) * 4 > _table.Length * 3)
                ResizeUnderLock(_table.Length * 2);
            entry.LinkUnderLock(this, hash);
            BeginWriteUnderLock();
            InsertIntoTableUnderLock(_table, entry);
            Volatile.Write(ref _count, _count + 1);
            Volatile.Write(ref _sorted, null);
            EndWriteUnderLock();
            return true;
        }
    }

    /// <summary>
    /// Unlinks <paramref name="entry"/> and drops the registry's reference. Lockless readers that
    /// already found it may still use it until their sections end; it is reclaimed after that.
    /// </summary>
    /// <returns>False if the entry was not linked here.</returns>
    public bool Remove(TEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_writeLock)
        {
            int slot = FindSlotUnderLock(entry.Key, entry.Hash);
            if (slot < 0 || !ReferenceEquals(_table[slot].Entry, entry))
                return false;
            BeginWriteUnderLock();
            DeleteFromTableUnderLock(_table, slot);
            Volatile.Write(ref _count, _count - 1);
            Volatile.Write(ref _sorted, null);
            entry.UnlinkUnderLock();
            EndWriteUnderLock();
        }
        // Outside the lock: the final release may queue reclamation.
        entry.Release();
        return true;
    }

    /// <summary>Removes the linked entry with <paramref name="key"/>, if any.</summary>
    /// <returns>The removed entry, or null.</returns>
    public TEntry? Remove(TKey key)
    {
        TEntry? entry;
        lock (_writeLock)
        {
            int slot = FindSlotUnderLock(key, KeyHash(key));
            entry = slot < 0 ? null : _table[slot].Entry;
        }
        return entry is not null && Remove(entry) ? entry : null;
    }

    /// <summary>
    /// One unvalidated probe of the table: the naive lookup without the seqcount retry and
    /// without the liveness check. Tests use it to show what those two checks prevent.
    /// </summary>
    internal TEntry? FindOnceUnvalidated(TKey key) => FindLinkedOrDead(key, KeyHash(key));

    void IRegistryOwner.DeferReclaim(Action reclaim) => Domain.Defer(reclaim);

    /// <summary>Linear probe of the current table. Lockless; may miss an entry a writer is moving.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private TEntry? FindLinkedOrDead(TKey key, int hash, bool defaultEquality = false)
    {
        Slot[] table = Volatile.Read(ref _table);
        // Tables are never empty and their lengths are powers of two, so every index masked with
        // length - 1 is in bounds: no bounds checks on the probe sequence.
        ref Slot first = ref MemoryMarshal.GetArrayDataReference(table);
        int mask = table.Length - 1;
        for (int i = hash & mask; ; i = (i + 1) & mask)
        {
            ref Slot slot = ref Unsafe.Add(ref first, i);
            // Volatile: orders the slot loads before the sequence re-read in SequenceMoved
            // (the smp_rmb of read_seqcount_retry), and pairs with the writers' volatile stores.
            TEntry? entry = Volatile.Read(ref slot.Entry);
            if (TestHooks.Enabled)
                TestHooks.Hit(HookPoint.RegistryProbedSlot, i);
            if (entry is null)
                return null;
            if (slot.Hash == hash && (defaultEquality ? EqualityComparer<TKey>.Default.Equals(entry.Key, key) : KeysEqual(entry.Key, key)))
                return entry;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int KeyHash(TKey key) =>
        typeof(TKey).IsValueType && _equality is null ? EqualityComparer<TKey>.Default.GetHashCode(key) : _equality!.GetHashCode(key);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool KeysEqual(TKey a, TKey b) =>
        typeof(TKey).IsValueType && _equality is null ? EqualityComparer<TKey>.Default.Equals(a, b) : _equality!.Equals(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool SequenceMoved(int begin) => (begin & 1) != 0 || Volatile.Read(ref _sequence) != begin;

    private void BeginWriteUnderLock()
    {
        // Odd: readers that miss while this write is under way will retry. The volatile stores
        // that follow cannot move above this one (release), pairing with the readers' volatile
        // slot loads (acquire): a reader that sees any of our slot changes sees this value too.
        Volatile.Write(ref _sequence, _sequence + 1);
    }

    private void EndWriteUnderLock() => Volatile.Write(ref _sequence, _sequence + 1);

    private int FindSlotUnderLock(TKey key, int hash)
    {
        Slot[] table = _table;
        int mask = table.Length - 1;
        for (int i = hash & mask; ; i = (i + 1) & mask)
        {
            TEntry? entry = table[i].Entry;
            if (entry is null)
                return -1;
            if (table[i].Hash == hash && KeysEqual(entry.Key, key))
                return i;
        }
    }

    private static void InsertIntoTableUnderLock(Slot[] table, TEntry entry)
    {
        int mask = table.Length - 1;
        int i = entry.Hash & mask;
        while (table[i].Entry is not null)
            i = (i + 1) & mask;
        Store(ref table[i], entry);
    }

    /// <summary>The hash first, then the entry with a release store (see <see cref="Slot"/>).</summary>
    private static void Store(ref Slot slot, TEntry? entry)
    {
        if (entry is not null)
            Volatile.Write(ref slot.Hash, entry.Hash);
        Volatile.Write(ref slot.Entry, entry);
    }

    /// <summary>
    /// Backward-shift deletion. Each moved entry is first written into the hole, then its old slot
    /// is overwritten: a reader probing from the moved entry's home may pass the hole before the
    /// entry lands there and reach the old slot after it is cleared. That is the false miss the
    /// seqcount exists for.
    /// </summary>
    private static void DeleteFromTableUnderLock(Slot[] table, int hole)
    {
        int mask = table.Length - 1;
        int next = hole;
        while (true)
        {
            next = (next + 1) & mask;
            TEntry? candidate = table[next].Entry;
            if (candidate is null)
                break;
            int home = candidate.Hash & mask;
            // The candidate may move back into the hole only if its home is not cyclically
            // inside (hole, next]: otherwise a probe from its home would no longer reach it.
            bool homeBetween = hole <= next
                ? hole < home && home <= next
                : hole < home || home <= next;
            if (homeBetween)
                continue;
            Store(ref table[hole], candidate);
            hole = next;
        }
        Store(ref table[hole], null);
    }

    private void ResizeUnderLock(int capacity)
    {
        var bigger = new Slot[capacity];
        foreach (Slot slot in _table)
            if (slot.Entry is { } entry)
                InsertIntoTableUnderLock(bigger, entry);
        // Readers on the old table keep a complete view of it: it is never changed again.
        Volatile.Write(ref _table, bigger);
    }

    private int LowerBound(TEntry[] sorted, TKey key)
    {
        int lo = 0, hi = sorted.Length;
        while (lo < hi)
        {
            int mid = (int)((uint)(lo + hi) >> 1);
            if (_order.Compare(sorted[mid].Key, key) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }

    /// <summary>Live entries in a key range of one snapshot, in key order. Allocation-free.</summary>
    public readonly struct RangeEnumerable
    {
        private readonly TEntry[] _sorted;
        private readonly int _start;
        private readonly TKey _high;
        private readonly IComparer<TKey> _order;

        internal RangeEnumerable(TEntry[] sorted, int start, TKey high, IComparer<TKey> order)
        {
            _sorted = sorted;
            _start = start;
            _high = high;
            _order = order;
        }

        /// <summary>Gets the enumerator.</summary>
        public RangeEnumerator GetEnumerator() => new(_sorted, _start, _high, _order);
    }

    /// <summary>Enumerator of <see cref="RangeEnumerable"/>; skips entries that died after the snapshot.</summary>
    public struct RangeEnumerator
    {
        private readonly TEntry[] _sorted;
        private readonly TKey _high;
        private readonly IComparer<TKey> _order;
        private int _index;

        internal RangeEnumerator(TEntry[] sorted, int start, TKey high, IComparer<TKey> order)
        {
            _sorted = sorted;
            _high = high;
            _order = order;
            _index = start - 1;
        }

        /// <summary>The current entry.</summary>
        public readonly TEntry Current => _sorted[_index];

        /// <summary>Advances to the next live entry in range.</summary>
        public bool MoveNext()
        {
            while (++_index < _sorted.Length)
            {
                TEntry entry = _sorted[_index];
                if (_order.Compare(entry.Key, _high) >= 0)
                    return false;
                if (entry.IsAlive)
                    return true;
            }
            return false;
        }
    }
}
