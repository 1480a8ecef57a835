using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ProbeGen.Concurrency;
using ProbeGen.Internal;
using ProbeGen.Registry;
using Xunit;
using Xunit.Abstractions;

namespace ProbeGen.Tests;

/// <summary>
/// Threads fire probes, or look up registry keys, while other threads attach and detach, or
/// insert, remove and replace those very keys, at random, for a bounded time.
/// </summary>
public class StressTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(3);

    /// <summary>Seeds for <see cref="ThreadRandom"/>: distinct per thread, the same sequence from run to run.</summary>
    private static int s_seed;

    /// <summary>This thread's own generator. <see cref="Random"/> is not thread-safe: a shared one corrupts its state.</summary>
    [ThreadStatic] private static Random? t_random;

    private static Random ThreadRandom => t_random ??= new Random(Interlocked.Increment(ref s_seed));

    [Fact]
    public void AttachDetachWhileFiring()
    {
        string provider = TestSites.UniqueProvider("stress");
        var fire = TestSites.Static<ProbeArgs<int>>(provider, "fire", new ProbeParameter("n", "int"));
        var call = TestSites.Method<ProbeArgs<int>, int>(provider, "call", "int", new ProbeParameter("n", "int"));

        // Stable consumers: attached before the firing starts, detached after it ends, so each
        // must see exactly every hit.
        long stableTyped = 0, stablePattern = 0, stableReturns = 0;
        var typed = Probes.Attach(fire, (in ProbeArgs<int> _) => Interlocked.Increment(ref stableTyped));
        var pattern = Probes.Attach(provider + ":*", (in ProbeHit hit) =>
        {
            if (hit.Point == ProbePoint.Return) Interlocked.Increment(ref stableReturns);
            else if (hit.Point == ProbePoint.Fire) Interlocked.Increment(ref stablePattern);
        });

        long violations = 0, unexpected = 0, fired = 0, called = 0, churned = 0;
        using var stop = new CancellationTokenSource(Duration);

        var firers = Enumerable.Range(0, 3).Select(t => Task.Factory.StartNew(() =>
        {
            long localFired = 0, localCalled = 0;
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    fire.Fire(new ProbeArgs<int>(t));
                    localFired++;
                    var args = new ProbeArgs<int>(t);
                    long start = call.Entry(args);
                    call.Return(args, t, start);
                    localCalled++;
                }
            }
            catch (Exception)
            {
                Interlocked.Increment(ref unexpected);
            }
            Interlocked.Add(ref fired, localFired);
            Interlocked.Add(ref called, localCalled);
        }, TaskCreationOptions.LongRunning)).ToArray();

        var churners = Enumerable.Range(0, 2).Select(c => Task.Factory.StartNew(() =>
        {
            // The churner's own decisions; handlers run on the firing threads and use theirs.
            var random = new Random(c);
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var done = new StrongBox();
                    ProbeHandler handler = (in ProbeHit _) =>
                    {
                        if (Volatile.Read(ref done.Value)) Interlocked.Increment(ref violations);
                        if (ThreadRandom.Next(1000) == 0) throw new InvalidOperationException("handler fault");
                    };
                    ProbeAttachment attachment = random.Next(3) switch
                    {
                        0 => Probes.Attach(fire, (in ProbeArgs<int> _) =>
                        {
                            if (Volatile.Read(ref done.Value)) Interlocked.Increment(ref violations);
                        }),
                        1 => Probes.Attach(provider + ":call", handler, new ProbeAttachOptions { MaxFaults = 2 }),
                        _ => Probes.Attach(provider + ":*", handler),
                    };
                    Thread.SpinWait(random.Next(2000));
                    if (random.Next(2) == 0)
                        attachment.Dispose();
                    else
                        attachment.DetachDeferred().Wait();
                    Volatile.Write(ref done.Value, true);
                    Interlocked.Increment(ref churned);
                }
            }
            catch (Exception)
            {
                Interlocked.Increment(ref unexpected);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();

        Task.WaitAll([.. firers, .. churners]);
        typed.Dispose();
        pattern.Dispose();

        output.WriteLine($"fired {fired}, called {called}, attach/detach cycles {churned}");
        Assert.Equal(0, Interlocked.Read(ref unexpected));
        Assert.Equal(0, Interlocked.Read(ref violations));
        Assert.Equal(fired, stableTyped);
        Assert.Equal(fired, stablePattern);
        Assert.Equal(called, stableReturns);
        Assert.True(churned > 50, $"only {churned} attach/detach cycles");
        Assert.True(fired > 10_000, $"only {fired} hits");
        Assert.Equal(0, typed.FaultCount + pattern.FaultCount);
    }

    /// <summary>
    /// Readers acquire the very keys a writer removes, inserts and replaces. Every key shares one
    /// home slot, so each removal shifts the entries behind it under the readers, and re-inserted
    /// keys land behind the others: entries keep moving. Two invariants are checked:
    /// <list type="bullet">
    /// <item>A key that stays linked for the whole lookup is found. The writer bumps the key's
    /// epoch after linking it and before unlinking it; a reader that sees the same odd epoch before
    /// and after its lookup knew the key was linked throughout. A lookup that misses it while a
    /// removal moves it must see the seqcount move and retry.</item>
    /// <item>An acquired entry is never dead: it is not reclaimed while held, and reclaimed exactly
    /// once. An unconditional increment on a found entry whose last reference just went revives
    /// it, and it is then reclaimed while held, and again when released.</item>
    /// </list>
    /// The windows those checks close are a few instructions wide. A hook on the readers' lookup
    /// path widens them at random (a short spin or a yield between reading a slot and using it), so
    /// that a few seconds of stress on two cores reach them.
    /// </summary>
    [Fact]
    public void RegistryLookupsOfTheKeysBeingChurnedNeverMissNorRevive()
    {
        var registry = new LocklessRegistry<long, StressNode>(new SrcuDomain("registry stress"), equality: new CollidingComparer());
        const int Keys = 32;
        // Per key: odd while linked and not being unlinked. Written only by the writer (volatile), read by readers.
        var epochs = new int[Keys];
        long misses = 0, revived = 0, checkedLookups = 0, acquired = 0, writes = 0;
        var readerThreads = new HashSet<Thread>();
        var allNodes = new List<StressNode>();
        using var stop = new CancellationTokenSource(Duration);

        Action<HookPoint, object?> jitter = (point, _) =>
        {
            if (!readerThreads.Contains(Thread.CurrentThread))
                return;
            Random random = ThreadRandom;
            if (point == HookPoint.RegistryFoundBeforeAcquire && random.Next(8) == 0)
            {
                if (random.Next(4) == 0) Thread.Yield();
                else Thread.SpinWait(random.Next(500));
            }
            else if (point == HookPoint.RegistryProbedSlot && random.Next(32) == 0)
            {
                Thread.SpinWait(random.Next(200));
            }
        };

        var readers = Enumerable.Range(0, 3).Select(_ => new Thread(() =>
        {
            Random random = ThreadRandom;
            long localChecked = 0, localAcquired = 0;
            while (!stop.IsCancellationRequested)
            {
                int key = random.Next(Keys);
                int before = Volatile.Read(ref epochs[key]);
                bool found = registry.TryAcquire(key, out StressNode? got);
                if ((before & 1) != 0)
                {
                    localChecked++;
                    if (!found && Volatile.Read(ref epochs[key]) == before)
                        Interlocked.Increment(ref misses);
                }
                if (!found)
                    continue;
                localAcquired++;
                if (got!.Key != key || Volatile.Read(ref got.Reclaimed) != 0)
                    Interlocked.Increment(ref revived);
                Thread.SpinWait(random.Next(50));  // hold it across the writer's next changes
                if (Volatile.Read(ref got.Reclaimed) != 0)
                    Interlocked.Increment(ref revived);
                got.Release();
            }
            Interlocked.Add(ref checkedLookups, localChecked);
            Interlocked.Add(ref acquired, localAcquired);
        })).ToArray();
        foreach (Thread reader in readers)
            readerThreads.Add(reader);

        var writer = new Thread(() =>
        {
            Random random = ThreadRandom;
            var live = new StressNode?[Keys];
            long localWrites = 0;
            void Link(int key)
            {
                var node = new StressNode(key);
                registry.Add(node);
                live[key] = node;
                allNodes.Add(node);
                Volatile.Write(ref epochs[key], epochs[key] + 1);  // odd: linked
            }
            void Unlink(int key)
            {
                Volatile.Write(ref epochs[key], epochs[key] + 1);  // even: being unlinked
                registry.Remove(live[key]!);
                live[key] = null;
            }
            while (!stop.IsCancellationRequested)
            {
                int key = random.Next(Keys);
                if (live[key] is null)
                {
                    Link(key);
                }
                else
                {
                    Unlink(key);
                    if (random.Next(2) == 0)
                        Link(key);  // replace: the same key again at once, as a new entry
                }
                localWrites++;
            }
            for (int key = 0; key < Keys; key++)
                if (live[key] is not null)
                    Unlink(key);
            Interlocked.Add(ref writes, localWrites);
        });

        TestHooks.Callback += jitter;
        try
        {
            foreach (Thread reader in readers)
                reader.Start();
            writer.Start();
            foreach (Thread reader in readers)
                reader.Join();
            writer.Join();
        }
        finally
        {
            TestHooks.Callback -= jitter;
        }
        registry.Domain.Barrier();

        long reclaimedWrongly = allNodes.Count(n => n.Reclaimed != 1 || n.ReclaimedWhileReferenced != 0);
        output.WriteLine($"checked lookups {checkedLookups}, acquired {acquired}, writes {writes}, entries {allNodes.Count}; " +
            $"misses {misses}, revived {revived}, reclaimed wrongly {reclaimedWrongly}");
        Assert.Equal(0, Interlocked.Read(ref misses));
        Assert.Equal(0, Interlocked.Read(ref revived));
        Assert.Equal(0, reclaimedWrongly);
        Assert.True(checkedLookups > 10_000, $"only {checkedLookups} lookups of linked keys");
        Assert.True(acquired > 1000, $"only {acquired} keys acquired");
        Assert.True(writes > 10_000, $"only {writes} writes");
    }

    private sealed class StrongBox
    {
        public bool Value;
    }

    /// <summary>An entry that records how often, and in what state, it was reclaimed.</summary>
    private sealed class StressNode(long key) : RegistryEntry<long>(key)
    {
        public int Reclaimed;
        public int ReclaimedWhileReferenced;

        protected override void OnReclaimed()
        {
            if (ReferenceCount != 0)
                Interlocked.Increment(ref ReclaimedWhileReferenced);
            Interlocked.Increment(ref Reclaimed);
        }
    }
}
