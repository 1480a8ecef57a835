using System;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using ProbeGen.Concurrency;
using Xunit;

namespace ProbeGen.Tests;

/// <summary>
/// A reader finds its counters from its stack pointer (x64 Linux). The danger is a dead thread's
/// stack handed to a new thread: these tests fail if a thread's exit does not clear its range.
/// </summary>
public class ThreadStackLookupTests
{
    /// <summary>x64 Linux with a C library that has pthread keys in libc itself (glibc 2.34 and later, musl).</summary>
    private static bool ExpectSupported =>
        OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64
        && NativeLibrary.TryLoad("libc.so.6", out nint libc) && NativeLibrary.TryGetExport(libc, "pthread_key_create", out _);

    [Fact]
    public void TheLookupIsInEffectWhereItShouldBe()
    {
        Assert.Equal(ExpectSupported, ThreadStacks.IsSupported);
    }

    [Fact]
    public void TheExitStubsOffsetsAreTheFieldsOffsets()
    {
        Assert.Equal(ReaderCounters.StackSizeOffset, (int)Marshal.OffsetOf<ReaderCounters>(nameof(ReaderCounters.StackSize)));
        Assert.Equal(ReaderCounters.NextOffset, (int)Marshal.OffsetOf<ReaderCounters>(nameof(ReaderCounters.NextOfThread)));
        Assert.Equal(ReaderCounters.Size, Marshal.SizeOf<ReaderCounters>());
    }

    /// <summary>
    /// The initial thread's range is the part of its stack mapped when it registered. A harness that
    /// then runs deeper (a benchmark's loop, a deep call chain) must be found again once, not miss on
    /// every section from there on. Simulated on a new thread: xunit runs no test on the initial one.
    /// </summary>
    [Fact]
    public void AnInitialThreadRunningDeeperThanItsMeasuredStackIsFoundAgain()
    {
        if (!ExpectSupported)
            return;
        var domain = new SrcuDomain("stack grows");
        var other = new SrcuDomain("stack grows too");
        bool foundAtCut = false, foundDeepBeforeSection = true, foundDeep = false, otherFoundDeep = false;
        (nuint Low, nuint Size) before = default, after = default;
        var thread = new Thread(() =>
        {
            using (domain.Enter())
            using (other.Enter())
            {
            }
            ThreadStacks.CutRangeLikeTheInitialThreadsForTest(ThreadStacks.CurrentStackPointer() - 16 * 1024);
            before = SrcuDomain.StackOf(domain.CountersAddressOfThisThread);
            foundAtCut = domain.FindsThisThreadOnStack;
            RunDeeper(256 * 1024, () =>
            {
                foundDeepBeforeSection = domain.FindsThisThreadOnStack;
                using (domain.Enter())
                {
                }
                foundDeep = domain.FindsThisThreadOnStack;
                // The widening covers every domain's block of the thread, not only the one that missed.
                otherFoundDeep = SrcuDomain.StackOf(other.CountersAddressOfThisThread).Low <= ThreadStacks.CurrentStackPointer();
            });
            after = SrcuDomain.StackOf(domain.CountersAddressOfThisThread);
        }, maxStackSize: 4 * 1024 * 1024);
        thread.Start();
        thread.Join();
        Assert.True(foundAtCut, "the thread was not found inside its cut range");
        Assert.False(foundDeepBeforeSection, "below the cut, nothing should find the thread before a section widens its range");
        Assert.True(foundDeep, "a section below the measured range did not widen it");
        Assert.True(otherFoundDeep, "the thread's block in the other domain kept the old range");
        Assert.True(after.Low < before.Low, "the low end did not move down");
        Assert.Equal(before.Low + before.Size, after.Low + after.Size);
    }

    /// <summary>
    /// A section that misses publishes the counters under the bucket of its caller's stack address,
    /// not of the slow path's own frame, which lies deeper and may sit across a 64 KB bucket
    /// boundary: there the caller would miss again on every section. The sweep puts the boundary
    /// at every 16-byte step between the two frames.
    /// </summary>
    [Fact]
    public void ASectionThatMissedOnceFindsItsCountersNextTimeWhereverTheBucketBoundaryFalls()
    {
        if (!ExpectSupported)
            return;
        var domain = new SrcuDomain("bucket boundary");
        var missedAgainAt = new System.Collections.Generic.List<int>();
        var thread = new Thread(() =>
        {
            using (domain.Enter())
            {
            }
            // Depths, in bytes below here, that bring this frame's next-lower bucket boundary to
            // within 1 KB either side of a callee's frame.
            int toBoundary = (int)((ThreadStacks.CurrentStackPointer() - 256) & 0xFFFF);
            for (int depth = Math.Max(16, toBoundary - 1024); depth <= toBoundary + 1024; depth += 16)
            {
                int missedAgain = 0;
                RunDeeper(depth, () =>
                {
                    // The table is per domain and per bucket: a fresh domain starts with no entry.
                    var fresh = new SrcuDomain("bucket boundary, one depth");
                    EnterAndExit(fresh);
                    int slowBefore = SrcuDomain.SlowEntersOfThisThread;
                    EnterAndExit(fresh);
                    missedAgain = SrcuDomain.SlowEntersOfThisThread - slowBefore;
                });
                if (missedAgain != 0)
                    missedAgainAt.Add(depth);
            }
        });
        thread.Start();
        thread.Join();
        Assert.Empty(missedAgainAt);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void EnterAndExit(SrcuDomain domain)
    {
        using (domain.Enter())
        {
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void RunDeeper(int bytes, Action body)
    {
        Span<byte> pad = stackalloc byte[bytes];
        pad[0] = 1;
        body();
        Assert.Equal(1, pad[0]);  // keeps the buffer, and so the depth, alive across the call
    }

    [Fact]
    public void AThreadFindsItsCountersOnItsStackUntilItExits()
    {
        if (!ExpectSupported)
            return;
        // Two domains: the thread's exit destructor follows the link from one block to the next.
        var domain = new SrcuDomain("exit clears");
        var other = new SrcuDomain("exit clears too");
        nint counters = 0, otherCounters = 0;
        (nuint Low, nuint Size) range = default, otherRange = default;
        bool foundOnStack = false;
        var thread = new Thread(() =>
        {
            using (domain.Enter())
            using (other.Enter())
            {
            }
            counters = domain.CountersAddressOfThisThread;
            otherCounters = other.CountersAddressOfThisThread;
            range = SrcuDomain.StackOf(counters);
            otherRange = SrcuDomain.StackOf(otherCounters);
            foundOnStack = domain.FindsThisThreadOnStack && other.FindsThisThreadOnStack;
        });
        thread.Start();
        thread.Join();
        Assert.NotEqual(0u, range.Size);
        Assert.Equal(range, otherRange);
        Assert.NotEqual(0u, ThreadStacks.QueryCurrentStack().Size);
        Assert.True(foundOnStack, "a later section did not find the thread's counters by its stack address");
        // The destructor runs as the OS thread ends, which can be a moment after Join returns.
        SpinWait.SpinUntil(() => SrcuDomain.StackOf(counters).Size == 0 && SrcuDomain.StackOf(otherCounters).Size == 0, TimeSpan.FromSeconds(30));
        Assert.Equal(0u, SrcuDomain.StackOf(counters).Size);
        Assert.Equal(0u, SrcuDomain.StackOf(otherCounters).Size);
    }

    [Fact]
    public void ANewThreadOnADeadThreadsStackIsWaitedForAsItself()
    {
        if (!ExpectSupported)
            return;
        var domain = new SrcuDomain("reused stack");
        int checkedReuses = 0;
        // A dead thread's stack goes back to the C library's cache, and the next thread of the same
        // stack size usually gets it; try until that has happened a few times.
        for (int attempt = 0; attempt < 50 && checkedReuses < 3; attempt++)
        {
            (nuint Low, nuint Size) deadRange = default;
            var first = new Thread(() =>
            {
                using (domain.Enter())
                {
                }
                deadRange = SrcuDomain.StackOf(domain.CountersAddressOfThisThread);
            });
            first.Start();
            first.Join();
            Thread.Sleep(10);

            using var inside = new ManualResetEventSlim();
            using var leave = new ManualResetEventSlim();
            (nuint Low, nuint Size) secondRange = default;
            var second = new Thread(() =>
            {
                secondRange = ThreadStacks.QueryCurrentStack();
                using (domain.Enter())
                {
                    inside.Set();
                    leave.Wait();
                }
            });
            second.Start();
            inside.Wait();
            if (secondRange == deadRange && deadRange.Size != 0)
            {
                // Had the new thread counted itself in the dead thread's counters, the scan would
                // skip them (their owner is dead) and this grace period would end at once.
                var sync = Task.Run(domain.Synchronize);
                TaskAssert.StillWaitingFor(sync, domain, second, "Synchronize returned while a thread on a dead thread's stack was inside a section");
                leave.Set();
                TaskAssert.Completes(sync, "Synchronize after the reader left");
                checkedReuses++;
            }
            leave.Set();
            second.Join();
        }
        Assert.True(checkedReuses > 0, "no thread got a dead thread's stack in 50 tries, so nothing was checked");
    }

    [Fact]
    public void StressThreadsThatComeAndGoNeverSeeReclaimedObjects()
    {
        // Short-lived readers, so stacks are reused while grace periods run: a reader counted in
        // the wrong counters would let the updater poison an object it still holds.
        var domain = new SrcuDomain("thread churn");
        var current = new Box();
        long violations = 0, sections = 0, threads = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var spawners = new Task[2];
        for (int s = 0; s < spawners.Length; s++)
        {
            spawners[s] = Task.Factory.StartNew(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var reader = new Thread(() =>
                    {
                        for (int i = 0; i < 200; i++)
                        {
                            using (domain.Enter())
                            {
                                Box seen = Volatile.Read(ref current);
                                if (seen.Poisoned) Interlocked.Increment(ref violations);
                                Thread.SpinWait(20);
                                if (seen.Poisoned) Interlocked.Increment(ref violations);
                            }
                            Interlocked.Increment(ref sections);
                        }
                    });
                    reader.Start();
                    reader.Join();
                    Interlocked.Increment(ref threads);
                }
            }, TaskCreationOptions.LongRunning);
        }
        var updater = Task.Factory.StartNew(() =>
        {
            int swaps = 0;
            while (!stop.IsCancellationRequested)
            {
                Box old = Interlocked.Exchange(ref current, new Box());
                domain.Synchronize();
                old.Poisoned = true;
                swaps++;
            }
            return swaps;
        }, TaskCreationOptions.LongRunning);
        Task.WaitAll(spawners);
        int swaps = updater.Result;
        Assert.Equal(0, Interlocked.Read(ref violations));
        Assert.True(threads > 20, $"only {threads} reader threads");
        Assert.True(swaps > 10, $"only {swaps} grace periods");
        // Exited threads' counters are recycled: the domain keeps a few, not one per thread.
        Assert.True(domain.ReaderSlotCount < 16, $"{domain.ReaderSlotCount} reader slots for at most 3 live threads");
    }

    private sealed class Box
    {
        public volatile bool Poisoned;
    }
}
