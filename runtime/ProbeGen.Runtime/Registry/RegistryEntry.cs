using System.Threading;
using ProbeGen.Internal;

namespace ProbeGen.Registry;

/// <summary>
/// An object held by a <see cref="LocklessRegistry{TKey, TEntry}"/>, with a reference count that
/// never comes back from zero.
/// </summary>
/// <remarks>
/// <para>Lifecycle: <i>new</i> (count 0, never inserted) → <i>live</i> (the registry holds one
/// reference from insertion; <see cref="TryAddRef"/> adds more) → <i>dead</i> (count 0 again,
/// after <see cref="LocklessRegistry{TKey, TEntry}.Remove(TEntry)"/> and every <see cref="Release"/>).
/// A dead entry is never revived: <see cref="TryAddRef"/> fails on it, lookups treat it as a
/// miss, and inserting it again throws. <see cref="OnReclaimed"/> runs once, a grace period of
/// the registry's SRCU domain after death, when no lockless reader can still hold it.</para>
/// </remarks>
/// <typeparam name="TKey">The registry's key type.</typeparam>
public abstract class RegistryEntry<TKey> where TKey : notnull
{
    private const int StateNew = 0, StateLinked = 1, StateRemoved = 2;

    /// <summary>References held (the registry's own plus every successful <see cref="TryAddRef"/>). Changed only with interlocked operations.</summary>
    private int _refCount;

    /// <summary>New, linked or removed. Written only under the owning registry's write lock.</summary>
    private int _state;

    /// <summary>Set once on insertion, under the registry's write lock.</summary>
    private IRegistryOwner? _owner;

    /// <summary>Creates an entry for <paramref name="key"/>.</summary>
    /// <param name="key">The entry's key; it never changes.</param>
    protected RegistryEntry(TKey key) => Key = key;

    /// <summary>The entry's key.</summary>
    public TKey Key { get; }

    /// <summary>The key's hash, cached at insertion so lookups need not recompute it per probe.</summary>
    internal int Hash;

    /// <summary>True while the count is above zero. A dead entry stays dead.</summary>
    public bool IsAlive => Volatile.Read(ref _refCount) > 0;

    /// <summary>True from insertion until removal (not necessarily until death).</summary>
    public bool IsLinked => Volatile.Read(ref _state) == StateLinked;

    /// <summary>The current reference count, for tests and diagnostics.</summary>
    public int ReferenceCount => Volatile.Read(ref _refCount);

    /// <summary>
    /// Takes a reference if the entry is still alive ("increment if not zero"). This is the only
    /// way a lockless lookup may take a reference: an unconditional increment could move a count
    /// from 0 to 1 after the last owner already scheduled the entry's reclamation (the
    /// resurrection race from the uprobes review).
    /// </summary>
    /// <returns>True if a reference was taken; the caller must <see cref="Release"/> it.</returns>
    public bool TryAddRef()
    {
        int count = Volatile.Read(ref _refCount);
        while (count > 0)
        {
            int seen = Interlocked.CompareExchange(ref _refCount, count + 1, count);
            if (seen == count)
                return true;
            count = seen;
        }
        return false;
    }

    /// <summary>
    /// The naive "get" that the review found wrong: an unconditional increment, which revives a
    /// dead entry. It exists only so tests can show the resurrection it causes; never use it.
    /// </summary>
    internal void AddRefUnconditionallyForTests() => Interlocked.Increment(ref _refCount);

    /// <summary>
    /// Drops a reference. The last one, which can only be dropped after the entry left its
    /// registry, schedules <see cref="OnReclaimed"/> after a grace period.
    /// </summary>
    public void Release()
    {
        int count = Interlocked.Decrement(ref _refCount);
        if (count > 0)
            return;
        if (count < 0)
            ThrowHelper.ThrowReleaseUnderflow();
        // count == 0: lockless readers may still be looking at the entry; they will see it dead
        // and treat it as a miss. Reclaim only once none of them can still be inside a section.
        _owner!.DeferReclaim(RunReclaimed);
    }

    /// <summary>
    /// Runs once, on the registry domain's reclaimer thread, a grace period after the entry died.
    /// Release unmanaged resources here (file descriptors, mappings, breakpoint bytes).
    /// </summary>
    protected virtual void OnReclaimed()
    {
    }

    /// <summary>Called under the registry's write lock when the entry is inserted.</summary>
    internal void LinkUnderLock(IRegistryOwner owner, int hash)
    {
        if (_state != StateNew)
            ThrowHelper.ThrowEntryDead();
        _owner = owner;
        Hash = hash;
        _state = StateLinked;
        // The registry's own reference. Published before the entry becomes reachable (the
        // registry publishes it with a volatile store after this).
        Volatile.Write(ref _refCount, 1);
    }

    /// <summary>Called under the registry's write lock when the entry is unlinked.</summary>
    internal void UnlinkUnderLock() => Volatile.Write(ref _state, StateRemoved);

    private void RunReclaimed() => OnReclaimed();
}

/// <summary>What an entry needs from the registry that holds it.</summary>
internal interface IRegistryOwner
{
    void DeferReclaim(System.Action reclaim);
}
