using System;
using System.Collections.Concurrent;
using System.Threading;
using System.Threading.Tasks;
using ProbeGen.Concurrency;
using ProbeGen.Internal;
using Xunit;

namespace ProbeGen.Tests;

public class SrcuDomainTests
{
    [Fact]
    public void ReadSectionsNestAndEnd()
    {
        var domain = new SrcuDomain("nesting");
        Assert.False(domain.ReadOngoing);
        using (domain.Enter())
        {
            Assert.True(domain.ReadOngoing);
            using (domain.Enter())
                Assert.True(domain.ReadOngoing);
            Assert.True(domain.ReadOngoing);
        }
        Assert.False(domain.ReadOngoing);
        domain.Synchronize();
    }

    [Fact]
    public void SectionsOfOneDomainDoNotCountInAnother()
    {
        var a = new SrcuDomain("a");
        var b = new SrcuDomain("b");
        using (a.Enter())
        {
            Assert.False(b.ReadOngoing);
            b.Synchronize();
        }
    }

    [Fact]
    public void DisposingAGuardTwiceExitsOnce()
    {
        var domain = new SrcuDomain("double dispose");
        using (domain.Enter())
        {
            SrcuReadGuard inner = domain.Enter();
            inner.Dispose();
            inner.Dispose();
            Assert.True(domain.ReadOngoing);
        }
        Assert.False(domain.ReadOngoing);
    }

    [Fact]
    public void SynchronizeInsideReadSectionThrows()
    {
        var domain = new SrcuDomain("self wait");
        using (domain.Enter())
        {
            var ex = Assert.Throws<InvalidOperationException>(domain.Synchronize);
            Assert.Contains("read-side section", ex.Message);
            Assert.Throws<InvalidOperationException>(domain.Barrier);
        }
    }

    [Fact]
    public void SynchronizeWaitsForEarlierReader()
    {
        var domain = new SrcuDomain("waits");
        using var entered = new ManualResetEventSlim();
        using var leave = new ManualResetEventSlim();
        var reader = new Thread(() =>
        {
            using (domain.Enter())
            {
                entered.Set();
                leave.Wait();
            }
        });
        reader.Start();
        entered.Wait();

        var sync = Task.Run(domain.Synchronize);
        TaskAssert.StillWaitingFor(sync, domain, reader, "Synchronize returned while a reader that began before it was still inside");
        leave.Set();
        TaskAssert.Completes(sync, "Synchronize after the reader left");
        reader.Join();
    }

    /// <summary>
    /// Sections that end out of order, by hand: the outer one ends while the inner one is still
    /// open, and Synchronize must still wait for the inner one. An exit that restores the count
    /// its section found, without checking that the sections ended in order, lets it return.
    /// </summary>
    [Fact]
    public void SectionsEndedOutOfOrderStillHoldAGracePeriod()
    {
        var domain = new SrcuDomain("out of order");
        using var inside = new ManualResetEventSlim();
        using var leave = new ManualResetEventSlim();
        bool stillInside = true;
        var reader = new Thread(() =>
        {
            SrcuReadGuard outer = domain.Enter();
            SrcuReadGuard inner = domain.Enter();
            outer.Dispose();
            inside.Set();
            leave.Wait();
            inner.Dispose();
            stillInside = domain.ReadOngoing;
        });
        reader.Start();
        inside.Wait();

        var sync = Task.Run(domain.Synchronize);
        TaskAssert.StillWaitingFor(sync, domain, reader, "Synchronize returned while a section that outlived the one it was nested in was still open");
        leave.Set();
        TaskAssert.Completes(sync, "Synchronize after the last section ended");
        reader.Join();
        Assert.False(stillInside);
    }

    /// <summary>
    /// Starvation freedom, forced: reader A holds the old index; Synchronize flips; reader B enters
    /// after the flip and stays inside. Synchronize must finish as soon as A leaves, B or no B.
    /// A single-counter design (wait until no reader at all) never finishes here.
    /// </summary>
    [Fact]
    public void NewReadersCannotStarveSynchronize()
    {
        var domain = new SrcuDomain("no starvation");
        using var aEntered = new ManualResetEventSlim();
        using var aLeave = new ManualResetEventSlim();
        using var bEntered = new ManualResetEventSlim();
        using var bLeave = new ManualResetEventSlim();
        var a = Task.Factory.StartNew(() =>
        {
            using (domain.Enter()) { aEntered.Set(); aLeave.Wait(); }
        }, TaskCreationOptions.LongRunning);
        aEntered.Wait();
        int before = domain.CurrentIndex;

        var sync = Task.Run(domain.Synchronize);
        SpinWait.SpinUntil(() => domain.CurrentIndex != before, TimeSpan.FromSeconds(30));
        Assert.NotEqual(before, domain.CurrentIndex);

        var b = Task.Factory.StartNew(() =>
        {
            using (domain.Enter()) { bEntered.Set(); bLeave.Wait(); }
        }, TaskCreationOptions.LongRunning);
        bEntered.Wait();

        aLeave.Set();
        TaskAssert.Completes(sync, "Synchronize while a newer reader is still inside");
        Assert.False(b.IsCompleted);
        bLeave.Set();
        Task.WaitAll(a, b);
    }

    /// <summary>
    /// Phase 1 of Synchronize, forced. Reader R loads the current index i and is parked before it
    /// counts itself under it. A first grace period runs meanwhile (R is not a reader yet) and flips
    /// the index to i^1. R then counts itself under i, the now inactive index, enters its section
    /// and loads the published object. The updater unpublishes that object and calls Synchronize:
    /// R began before it, so it must wait for R. Only phase 1 (draining the inactive index before
    /// the flip) sees R; without it, the grace period flips back to i, drains i^1, and returns
    /// while R still uses the object.
    /// </summary>
    [Fact]
    public void SynchronizeWaitsForALateReaderCountedUnderTheInactiveIndex()
    {
        var domain = new SrcuDomain("phase 1");
        var current = new Box();
        using var inside = new ManualResetEventSlim();
        using var leave = new ManualResetEventSlim();
        bool usedReclaimed = false;
        using var gate = new HookGate(HookPoint.SrcuReaderIndexLoaded, subject => ReferenceEquals(subject, domain));
        var reader = new Thread(() =>
        {
            using (domain.Enter())
            {
                Box seen = Volatile.Read(ref current);
                inside.Set();
                leave.Wait();
                usedReclaimed = seen.Poisoned;
            }
        });
        gate.ParkThread(reader);
        reader.Start();
        gate.WaitUntilParked();
        int loaded = domain.CurrentIndex;

        TaskAssert.Completes(Task.Run(domain.Synchronize), "a grace period while R is not yet a reader");
        Assert.NotEqual(loaded, domain.CurrentIndex);

        gate.Release();
        Assert.True(inside.Wait(TimeSpan.FromSeconds(30)), "R never entered its section");
        Box old = Interlocked.Exchange(ref current, new Box());
        var sync = Task.Run(() =>
        {
            domain.Synchronize();
            old.Poisoned = true;
        });
        TaskAssert.StillWaitingFor(sync, domain, reader,
            "Synchronize returned while a reader counted under the inactive index still held the unpublished object");
        leave.Set();
        TaskAssert.Completes(sync, "Synchronize after R left");
        reader.Join();
        Assert.False(usedReclaimed);
    }

    [Fact]
    public void SynchronizeFinishesUnderAContinuousStreamOfReaders()
    {
        var domain = new SrcuDomain("stream");
        using var stop = new CancellationTokenSource();
        // Two overlapping readers: at almost every instant some section is open.
        Task[] readers = new Task[2];
        for (int r = 0; r < readers.Length; r++)
        {
            readers[r] = Task.Factory.StartNew(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    using (domain.Enter())
                        Thread.SpinWait(200);
                }
            }, TaskCreationOptions.LongRunning);
        }
        var sync = Task.Run(() =>
        {
            for (int i = 0; i < 20; i++)
                domain.Synchronize();
        });
        TaskAssert.Completes(sync, "20 grace periods under continuous readers");
        stop.Cancel();
        Task.WaitAll(readers);
        Assert.True(domain.GracePeriods >= 20);
    }

    [Fact]
    public void DeferredCallbackRunsOnlyAfterTheGracePeriod()
    {
        var domain = new SrcuDomain("defer");
        using var entered = new ManualResetEventSlim();
        using var leave = new ManualResetEventSlim();
        var reader = new Thread(() =>
        {
            using (domain.Enter()) { entered.Set(); leave.Wait(); }
        });
        reader.Start();
        entered.Wait();

        var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool readerStillInside = false;
        domain.Defer(() =>
        {
            readerStillInside = !leave.IsSet;
            ran.SetResult();
        });
        TaskAssert.StillWaitingFor(ran.Task, domain, reader, "a deferred callback ran while a reader from before the Defer was inside");
        leave.Set();
        TaskAssert.Completes(ran.Task, "the deferred callback");
        Assert.False(readerStillInside);
        reader.Join();
    }

    [Fact]
    public void DeferIsAllowedInsideAReadSection()
    {
        var domain = new SrcuDomain("defer inside");
        int ran = 0;
        using (domain.Enter())
            domain.Defer(() => Interlocked.Increment(ref ran));
        domain.Barrier();
        Assert.Equal(1, ran);
    }

    [Fact]
    public void BarrierWaitsForEveryEarlierCallback()
    {
        var domain = new SrcuDomain("barrier");
        int ran = 0;
        const int producers = 4, perProducer = 250;
        Parallel.For(0, producers, _ =>
        {
            for (int i = 0; i < perProducer; i++)
                domain.Defer(() => Interlocked.Increment(ref ran));
        });
        domain.Barrier();
        Assert.Equal(producers * perProducer, Volatile.Read(ref ran));
        Assert.True(domain.DeferredCallbacksRun >= producers * perProducer);
    }

    [Fact]
    public void BarrierFromACallbackThrowsInsteadOfDeadlocking()
    {
        var domain = new SrcuDomain("barrier in callback");
        Exception? seen = null;
        domain.Defer(() =>
        {
            try { domain.Barrier(); }
            catch (Exception ex) { seen = ex; }
        });
        domain.Barrier();
        Assert.IsType<InvalidOperationException>(seen);
    }

    [Fact]
    public void ThrowingCallbackIsContainedAndCounted()
    {
        var domain = new SrcuDomain("faulty callback");
        int after = 0;
        domain.Defer(() => throw new FormatException("boom"));
        domain.Defer(() => after = 1);
        domain.Barrier();
        Assert.Equal(1, domain.DeferredCallbackFailures);
        Assert.IsType<FormatException>(domain.LastDeferredCallbackFailure);
        Assert.Equal(1, after);
    }

    [Fact]
    public void AThreadThatDiedInsideASectionDoesNotBlockGracePeriodsForever()
    {
        var domain = new SrcuDomain("dead reader");
        var thread = new Thread(() =>
        {
            // Enter and never exit, then the thread ends: a leaked section.
            domain.Enter();
        });
        thread.Start();
        thread.Join();
        TaskAssert.Completes(Task.Run(domain.Synchronize), "Synchronize with a dead thread's leaked section");
    }

    [Fact]
    public void StressReadersAndUpdatersNeverSeeReclaimedObjects()
    {
        // Classic RCU usage: readers dereference a published object; the updater swaps it, waits a
        // grace period, then poisons the old one. A reader that sees poison saw a reclaimed object.
        var domain = new SrcuDomain("stress");
        var current = new Box();
        long violations = 0, reads = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var readers = new Task[3];
        for (int r = 0; r < readers.Length; r++)
        {
            readers[r] = Task.Factory.StartNew(() =>
            {
                long local = 0;
                while (!stop.IsCancellationRequested)
                {
                    using (domain.Enter())
                    {
                        Box seen = Volatile.Read(ref current);
                        if (seen.Poisoned) Interlocked.Increment(ref violations);
                        Thread.SpinWait(20);
                        if (seen.Poisoned) Interlocked.Increment(ref violations);
                    }
                    local++;
                }
                Interlocked.Add(ref reads, local);
            }, TaskCreationOptions.LongRunning);
        }
        var updater = Task.Factory.StartNew(() =>
        {
            int swaps = 0;
            while (!stop.IsCancellationRequested)
            {
                Box old = Interlocked.Exchange(ref current, new Box());
                if (swaps++ % 2 == 0)
                {
                    domain.Synchronize();
                    old.Poisoned = true;
                }
                else
                {
                    domain.Defer(() => old.Poisoned = true);
                }
            }
            return swaps;
        }, TaskCreationOptions.LongRunning);
        Task.WaitAll(readers);
        int swaps = updater.Result;
        domain.Barrier();
        Assert.Equal(0, Interlocked.Read(ref violations));
        Assert.True(swaps > 10, $"only {swaps} swaps");
        Assert.True(reads > 1000, $"only {reads} reads");
    }

    private sealed class Box
    {
        public volatile bool Poisoned;
    }
}
