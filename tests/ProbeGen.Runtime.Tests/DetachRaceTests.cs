using System;
using System.Threading;
using System.Threading.Tasks;
using ProbeGen.Internal;
using Xunit;

namespace ProbeGen.Tests;

/// <summary>
/// Detach racing an in-flight hit, forced through the <see cref="HookPoint.SiteBindingsLoaded"/>
/// hook: the firing thread F has loaded the site's bindings (so it will call the handler) and is
/// parked before calling it; thread D disposes the attachment meanwhile.
/// </summary>
public class DetachRaceTests
{
    [Fact]
    public void DisposeWaitsForTheInFlightHitAndNoCallFollowsIt()
    {
        var site = TestSites.Static<ProbeArgs<int>>(TestSites.UniqueProvider("race"), "hit", new ProbeParameter("n", "int"));
        int disposeReturned = 0, callsAfterDispose = 0, calls = 0;
        var attachment = Probes.Attach(site, (in ProbeArgs<int> _) =>
        {
            Interlocked.Increment(ref calls);
            if (Volatile.Read(ref disposeReturned) != 0)
                Interlocked.Increment(ref callsAfterDispose);
        });

        using var gate = new HookGate(HookPoint.SiteBindingsLoaded, subject => ReferenceEquals(subject, site));
        var f = new Thread(() => site.Fire(new ProbeArgs<int>(1)));
        gate.ParkThread(f);
        f.Start();
        gate.WaitUntilParked();

        var d = Task.Factory.StartNew(() =>
        {
            attachment.Dispose();
            Volatile.Write(ref disposeReturned, 1);
        }, TaskCreationOptions.LongRunning);
        TaskAssert.StillWaitingFor(d, Probes.Domain, f, "Dispose returned while a hit that had loaded the handler was still in flight");
        Assert.False(site.IsEnabled);  // new hits already skip the handler

        gate.Release();
        f.Join();
        TaskAssert.Completes(d, "Dispose after the in-flight hit finished");
        site.Fire(new ProbeArgs<int>(2));

        Assert.Equal(1, calls);  // the in-flight hit was delivered, before Dispose returned
        Assert.Equal(0, callsAfterDispose);
    }

    [Fact]
    public void DeferredDetachCompletesOnlyAfterTheInFlightHit()
    {
        var site = TestSites.Static<ProbeArgs>(TestSites.UniqueProvider("race"), "deferred");
        int calls = 0;
        var attachment = Probes.Attach(site, (in ProbeArgs _) => Interlocked.Increment(ref calls));

        using var gate = new HookGate(HookPoint.SiteBindingsLoaded, subject => ReferenceEquals(subject, site));
        var f = new Thread(() => site.Fire(default));
        gate.ParkThread(f);
        f.Start();
        gate.WaitUntilParked();

        Task detached = attachment.DetachDeferred();  // returns at once
        TaskAssert.StillWaitingFor(detached, Probes.Domain, f, "the deferred detach completed while a hit was in flight");
        gate.Release();
        f.Join();
        TaskAssert.Completes(detached, "the deferred detach");
        Assert.Equal(1, calls);
    }

    /// <summary>
    /// The same schedule against the naive design: a site that checks an "attached" flag and a
    /// detach that clears it and returns. F passed the check before D detached, so F calls the
    /// handler after Dispose returned. This is what the grace period prevents.
    /// </summary>
    [Fact]
    public void TheSameScheduleBreaksANaiveFlagBasedDetach()
    {
        var naive = new NaiveSite();
        int disposeReturned = 0, callsAfterDispose = 0;
        naive.Handler = () =>
        {
            if (Volatile.Read(ref disposeReturned) != 0)
                Interlocked.Increment(ref callsAfterDispose);
        };
        using var parked = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        naive.AfterCheck = () => { parked.Set(); release.Wait(); };

        var f = new Thread(naive.Fire);
        f.Start();
        parked.Wait();
        naive.Detach();  // returns at once: nothing waits for F
        Volatile.Write(ref disposeReturned, 1);
        release.Set();
        f.Join();

        Assert.Equal(1, callsAfterDispose);
    }

    private sealed class NaiveSite
    {
        private volatile bool _attached = true;
        public Action? Handler;
        public Action? AfterCheck;

        public void Fire()
        {
            if (!_attached)
                return;
            AfterCheck?.Invoke();
            Handler?.Invoke();
        }

        public void Detach() => _attached = false;
    }
}
