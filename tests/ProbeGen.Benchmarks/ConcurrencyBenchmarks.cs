using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;
using BenchmarkDotNet.Attributes;
using ProbeGen.Concurrency;
using ProbeGen.Registry;

namespace ProbeGen.Benchmarks;

/// <summary>
/// SRCU read-side enter+exit against <c>lock</c> and a ReaderWriterLockSlim read lock, on one and
/// two threads. Each operation is one call of a non-inlined method, as a probe hit makes it:
/// in a loop with the section inlined, the JIT hoists the thread-static slot lookup out of the
/// loop and the figure drops to about a quarter of what a real hit pays. <see cref="EmptyCall_1Thread"/>
/// measures the call itself, so the table can report each cost net of it.
/// </summary>
public class SrcuBenchmarks
{
    private const int Ops = 1 << 20;
    private static readonly SrcuDomain Domain = new("benchmark");
    private static readonly object Gate = new();
    private static readonly ReaderWriterLockSlim Rwls = new();
    private TwoThreadRunner? _runner;

    [GlobalSetup]
    public void Setup() => _runner = new TwoThreadRunner();

    [GlobalCleanup]
    public void Cleanup() => _runner?.Dispose();

    [Benchmark(OperationsPerInvoke = Ops)]
    public void EmptyCall_1Thread() => EmptyLoop();

    [Benchmark(OperationsPerInvoke = Ops, Baseline = true)]
    public void Srcu_1Thread() => SrcuLoop();

    [Benchmark(OperationsPerInvoke = 2 * Ops)]
    public void Srcu_2Threads() => _runner!.Run(SrcuLoop);

    [Benchmark(OperationsPerInvoke = Ops)]
    public void Lock_1Thread() => LockLoop();

    [Benchmark(OperationsPerInvoke = 2 * Ops)]
    public void Lock_2Threads() => _runner!.Run(LockLoop);

    [Benchmark(OperationsPerInvoke = Ops)]
    public void RwlsRead_1Thread() => RwlsLoop();

    [Benchmark(OperationsPerInvoke = 2 * Ops)]
    public void RwlsRead_2Threads() => _runner!.Run(RwlsLoop);

    private static void EmptyLoop()
    {
        for (int i = 0; i < Ops; i++)
            Empty();
    }

    private static void SrcuLoop()
    {
        for (int i = 0; i < Ops; i++)
            SrcuSection();
    }

    private static void LockLoop()
    {
        for (int i = 0; i < Ops; i++)
            LockSection();
    }

    private static void RwlsLoop()
    {
        for (int i = 0; i < Ops; i++)
            RwlsSection();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Empty()
    {
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void SrcuSection()
    {
        using (Domain.Enter())
        {
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void LockSection()
    {
        lock (Gate)
        {
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RwlsSection()
    {
        Rwls.EnterReadLock();
        Rwls.ExitReadLock();
    }
}

/// <summary>
/// Point lookups in a 10k-entry map while a writer churns it: our registry (inside a section the
/// caller holds, and with a section per lookup), ConcurrentDictionary, and a ReaderWriterLockSlim
/// around a SortedDictionary. One lookup in eight asks for a key the writer is adding and
/// removing at that moment, so hits, validated misses and the registry's retry all take part;
/// <see cref="Retries"/> says how often the retry ran.
/// </summary>
[MemoryDiagnoser]
public class RegistryLookupBenchmarks
{
    private const int Entries = 10_000;
    private const int Lookups = 4096;
    private const int ChurnedKeys = 128;

    private readonly SrcuDomain _domain = new("registry benchmark");
    private LocklessRegistry<long, Entry>? _registry;
    private ConcurrentDictionary<long, Entry>? _concurrent;
    private SortedDictionary<long, Entry>? _sorted;
    private readonly ReaderWriterLockSlim _rwls = new();
    private long[] _keys = [];
    private long[] _churned = [];
    private Thread? _writer;
    private volatile bool _stop;
    private long _lookups, _retriesAtStart;

    public sealed class Entry(long key) : RegistryEntry<long>(key);

    public enum Peer
    {
        /// <summary>Find inside the caller's read-side section, as a trap handler that already holds one calls it.</summary>
        Registry,

        /// <summary>Enter, Find, exit: a read-side section per lookup.</summary>
        RegistryWithSection,
        ConcurrentDictionary,
        RwlsSortedDictionary,
    }

    [Params(Peer.Registry, Peer.RegistryWithSection, Peer.ConcurrentDictionary, Peer.RwlsSortedDictionary)]
    public Peer Subject { get; set; }

    /// <summary>Registry lookups that ran again because a writer moved the sequence, per million lookups, since setup.</summary>
    public static double RetriesPerMillion { get; private set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        var stable = new HashSet<long>();
        while (stable.Count < Entries)
            stable.Add(random.NextInt64(0, long.MaxValue / 2) * 2);  // even keys: always there
        var churned = new HashSet<long>();
        while (churned.Count < ChurnedKeys)
            churned.Add(random.NextInt64(0, long.MaxValue / 2) * 2 + 1);  // odd keys: come and go
        _churned = [.. churned];
        long[] stableKeys = [.. stable];
        _keys = new long[Lookups];
        for (int i = 0; i < Lookups; i++)
            _keys[i] = i % 8 == 7 ? _churned[random.Next(ChurnedKeys)] : stableKeys[random.Next(Entries)];
        _registry = new LocklessRegistry<long, Entry>(_domain);
        _concurrent = new ConcurrentDictionary<long, Entry>();
        _sorted = new SortedDictionary<long, Entry>();
        foreach (long key in stableKeys)
        {
            _registry.Add(new Entry(key));
            _concurrent[key] = new Entry(key);
            _sorted[key] = new Entry(key);
        }
        _stop = false;
        _lookups = 0;
        _retriesAtStart = _registry.Retries;
        _writer = new Thread(Churn) { IsBackground = true, Name = "registry churn" };
        _writer.Start();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop = true;
        _writer?.Join();
        if (Subject is Peer.Registry or Peer.RegistryWithSection && _lookups > 0)
            RetriesPerMillion = (_registry!.Retries - _retriesAtStart) * 1e6 / _lookups;
    }

    [Benchmark(OperationsPerInvoke = Lookups)]
    public long Lookup()
    {
        long found = 0;
        long[] keys = _keys;
        switch (Subject)
        {
            case Peer.Registry:
                using (_domain.Enter())
                {
                    LocklessRegistry<long, Entry> inSection = _registry!;
                    for (int i = 0; i < Lookups; i++)
                        if (inSection.Find(keys[i]) is not null)
                            found++;
                }
                break;
            case Peer.RegistryWithSection:
                LocklessRegistry<long, Entry> registry = _registry!;
                for (int i = 0; i < Lookups; i++)
                {
                    using (_domain.Enter())
                    {
                        if (registry.Find(keys[i]) is not null)
                            found++;
                    }
                }
                break;
            case Peer.ConcurrentDictionary:
                ConcurrentDictionary<long, Entry> concurrent = _concurrent!;
                for (int i = 0; i < Lookups; i++)
                    if (concurrent.TryGetValue(keys[i], out _))
                        found++;
                break;
            default:
                SortedDictionary<long, Entry> sorted = _sorted!;
                for (int i = 0; i < Lookups; i++)
                {
                    _rwls.EnterReadLock();
                    if (sorted.TryGetValue(keys[i], out _))
                        found++;
                    _rwls.ExitReadLock();
                }
                break;
        }
        _lookups += Lookups;
        return found;
    }

    /// <summary>The writer: removes and adds back the churned keys in turn, paced like a busy attach/detach loop.</summary>
    private void Churn()
    {
        var random = new Random(7);
        while (!_stop)
        {
            long key = _churned[random.Next(ChurnedKeys)];
            switch (Subject)
            {
                case Peer.Registry or Peer.RegistryWithSection:
                    if (_registry!.Remove(key) is null)
                        _registry.TryAdd(new Entry(key));
                    break;
                case Peer.ConcurrentDictionary:
                    if (!_concurrent!.TryRemove(key, out _))
                        _concurrent[key] = new Entry(key);
                    break;
                default:
                    _rwls.EnterWriteLock();
                    if (!_sorted!.Remove(key))
                        _sorted[key] = new Entry(key);
                    _rwls.ExitWriteLock();
                    break;
            }
            Thread.SpinWait(500);
        }
    }
}

/// <summary>The latency of a grace period with no reader anywhere.</summary>
public class SynchronizeBenchmarks
{
    private readonly SrcuDomain _domain = new("synchronize benchmark");

    [GlobalSetup]
    public void Setup()
    {
        using (_domain.Enter())
        {
            // Give this thread a slot, as a real process would have.
        }
    }

    [Benchmark]
    public void SynchronizeNoReaders() => _domain.Synchronize();
}
