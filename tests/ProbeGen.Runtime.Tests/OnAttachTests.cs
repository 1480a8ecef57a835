using System;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace ProbeGen.Tests;

/// <summary>
/// What a consumer's <see cref="ProbeConsumer.OnAttach"/> may do. It runs under the probe writer
/// lock, which handlers also take (a deferred detach, an attach, the fault that detaches), so it
/// must never wait for a grace period.
/// </summary>
public class OnAttachTests
{
    /// <summary>
    /// The deadlock, forced without timing:
    /// <list type="number">
    /// <item>F fires the victim's site; its handler parks inside the read-side section.</item>
    /// <item>A attaches a consumer; its OnAttach, under the writer lock, lets F go on and disposes
    /// the victim attachment.</item>
    /// <item>F's handler calls DetachDeferred on the victim, which needs the writer lock.</item>
    /// </list>
    /// A Dispose that waited for the grace period would wait for F, and F for the lock A holds:
    /// neither would ever return. Dispose must throw at once instead, and change nothing.
    /// </summary>
    [Fact]
    public void DisposingAnAttachmentInsideOnAttachThrowsInsteadOfDeadlocking()
    {
        string provider = TestSites.UniqueProvider("onattach");
        var victimSite = TestSites.Static<ProbeArgs>(provider, "victim");
        TestSites.Static<ProbeArgs>(provider, "other");

        using var inHandler = new ManualResetEventSlim();
        using var go = new ManualResetEventSlim();
        ProbeAttachment? victim = null;
        Task? victimDeferred = null;
        victim = Probes.Attach(victimSite, (in ProbeArgs _) =>
        {
            inHandler.Set();
            go.Wait();
            victimDeferred = victim!.DetachDeferred();
        });
        using var victimGuard = FaultGuard.For(victim);

        var f = new Thread(() => victimSite.Fire(default)) { IsBackground = true };
        f.Start();
        Assert.True(inHandler.Wait(TimeSpan.FromSeconds(30)), "the handler was never called");

        Exception? refused = null;
        var consumer = new CallbackConsumer(_ =>
        {
            go.Set();
            try { victim.Dispose(); }
            catch (Exception ex) { refused = ex; }
        });
        var attach = Task.Factory.StartNew(() => Probes.Attach(provider + ":other", consumer), TaskCreationOptions.LongRunning);

        TaskAssert.Completes(attach, "Attach whose OnAttach disposes an attachment");
        Assert.True(f.Join(TimeSpan.FromSeconds(30)), "the handler's deferred detach never got the writer lock");
        var ioe = Assert.IsType<InvalidOperationException>(refused);
        Assert.Contains("OnAttach", ioe.Message);
        Assert.Contains("DetachDeferred", ioe.Message);

        // The refused Dispose detached nothing: the handler's deferred detach did, and completes.
        Assert.NotNull(victimDeferred);
        TaskAssert.Completes(victimDeferred!, "the handler's deferred detach");
        Assert.Equal(ProbeDetachReason.Requested, victim.DetachReason);
        Assert.False(victimSite.IsEnabled);
        attach.Result.Dispose();
    }

    [Theory]
    [InlineData("Synchronize")]
    [InlineData("Barrier")]
    public void WaitingForAGracePeriodInsideOnAttachThrows(string wait)
    {
        string provider = TestSites.UniqueProvider("onattachwait");
        TestSites.Static<ProbeArgs>(provider, "site");
        Exception? refused = null;
        var consumer = new CallbackConsumer(_ =>
        {
            try
            {
                if (wait == "Synchronize") Probes.Domain.Synchronize();
                else Probes.Domain.Barrier();
            }
            catch (Exception ex) { refused = ex; }
        });
        using (Probes.Attach(provider + ":*", consumer)) { }

        var ioe = Assert.IsType<InvalidOperationException>(refused);
        Assert.Contains(wait + "()", ioe.Message);
        Assert.Contains("writer lock", ioe.Message);
        // Outside OnAttach the same calls wait as usual.
        Probes.Domain.Synchronize();
        Probes.Domain.Barrier();
    }

    [Fact]
    public void AnOnAttachThatThrowsFailsTheAttachAndLeavesNothingBound()
    {
        string provider = TestSites.UniqueProvider("onattachthrows");
        var first = TestSites.Static<ProbeArgs>(provider, "a");
        var second = TestSites.Static<ProbeArgs>(provider, "b");
        int calls = 0;
        var consumer = new CallbackConsumer(probe =>
        {
            if (probe.Name == "b") throw new FormatException("no state for b");
        }, onHit: () => Interlocked.Increment(ref calls));

        var ex = Assert.Throws<FormatException>(() => Probes.Attach(provider + ":*", consumer));
        Assert.Equal("no state for b", ex.Message);
        Assert.False(first.IsEnabled);  // bound before OnAttach threw for "b", then unbound
        Assert.False(second.IsEnabled);
        var later = TestSites.Static<ProbeArgs>(provider, "c");
        Assert.False(later.IsEnabled);  // the failed attach does not cover later probes either
        first.Fire(default);
        Assert.Equal(0, calls);
    }

    [Fact]
    public void AnOnAttachThatThrowsForALaterProbeIsAFaultAndRegistrationGoesOn()
    {
        string provider = TestSites.UniqueProvider("onattachlate");
        var consumer = new CallbackConsumer(probe =>
        {
            if (probe.Name == "bad") throw new FormatException("no state for bad");
        });
        using var attachment = Probes.Attach(provider + ":*", consumer);

        var bad = TestSites.Static<ProbeArgs>(provider, "bad");
        var good = TestSites.Static<ProbeArgs>(provider, "good");
        Assert.False(bad.IsEnabled);
        Assert.True(good.IsEnabled);
        Assert.Equal(1, attachment.FaultCount);
        Assert.Equal("no state for bad", attachment.FirstFault!.Message);
    }

    [Fact]
    public void AnOnAttachThatDetachesItsOwnAttachmentLeavesTheProbeUnbound()
    {
        string provider = TestSites.UniqueProvider("onattachself");
        ProbeAttachment? attachment = null;
        Task? detached = null;
        var consumer = new CallbackConsumer(_ => detached = attachment!.DetachDeferred());
        attachment = Probes.Attach(provider + ":*", consumer);  // nothing matches yet

        var site = TestSites.Static<ProbeArgs>(provider, "late");
        Assert.NotNull(detached);
        TaskAssert.Completes(detached!, "the deferred detach from OnAttach");
        Assert.False(site.IsEnabled);
        Assert.Empty(attachment.Probes);
    }

    private sealed class CallbackConsumer(Action<ProbeDescriptor> onAttach, Action? onHit = null) : ProbeConsumer
    {
        protected internal override object? OnAttach(ProbeDescriptor probe)
        {
            onAttach(probe);
            return null;
        }

        protected internal override void OnHit(in ProbeHit hit) => onHit?.Invoke();
    }
}
