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

/// <summary>A point lookup among 10,000 entries while a writer thread adds and removes other keys.</summary>
public class RegistryLookupBenchmarks
{
    private const int Entries = 10_000;
    private const int Lookups = 4096;

    private readonly SrcuDomain _domain = new("registry benchmark");
    private LocklessRegistry<long, Entry>? _registry;
    private ConcurrentDictionary<long, Entry>? _concurrent;
    private SortedDictionary<long, Entry>? _sorted;
    private readonly ReaderWriterLockSlim _rwls = new();
    private long[] _keys = [];
    private Thread? _writer;
    private volatile bool _stop;

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

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        var keys = new HashSet<long>();
        while (keys.Count < Entries)
            keys.Add(random.NextInt64(0, long.MaxValue / 2) * 2);  // even keys: looked up
        _keys = [.. keys];
        random.Shuffle(_keys);
        _registry = new LocklessRegistry<long, Entry>(_domain);
        _concurrent = new ConcurrentDictionary<long, Entry>();
        _sorted = new SortedDictionary<long, Entry>();
        foreach (long key in _keys)
        {
            _registry.Add(new Entry(key));
            _concurrent[key] = new Entry(key);
            _sorted[key] = new Entry(key);
        }
        _stop = false;
        _writer = new Thread(Churn) { IsBackground = true, Name = "registry churn" };
        _writer.Start();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop = true;
        _writer?.Join();
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
        return found;
    }

    /// <summary>The writer: adds and removes odd keys (never looked up), paced like a busy attach/detach loop.</summary>
    private void Churn()
    {
        var random = new Random(7);
        var live = new Queue<long>();
        while (!_stop)
        {
            long key = random.NextInt64(0, long.MaxValue / 2) * 2 + 1;
            switch (Subject)
            {
                case Peer.Registry or Peer.RegistryWithSection:
                    _registry!.TryAdd(new Entry(key));
                    break;
                case Peer.ConcurrentDictionary:
                    _concurrent![key] = new Entry(key);
                    break;
                default:
                    _rwls.EnterWriteLock();
                    _sorted![key] = new Entry(key);
                    _rwls.ExitWriteLock();
                    break;
            }
            live.Enqueue(key);
            if (live.Count > 64)
            {
                long old = live.Dequeue();
                switch (Subject)
                {
                    case Peer.Registry or Peer.RegistryWithSection:
                        _registry!.Remove(old);
                        break;
                    case Peer.ConcurrentDictionary:
                        _concurrent!.TryRemove(old, out _);
                        break;
                    default:
                        _rwls.EnterWriteLock();
                        _sorted!.Remove(old);
                        _rwls.ExitWriteLock();
                        break;
                }
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
