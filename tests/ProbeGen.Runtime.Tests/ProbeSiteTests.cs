using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace ProbeGen.Tests;

public class ProbeSiteTests
{
    private static readonly ProbeParameter[] PlacedParameters =
        [new("orderId", "int"), new("amount", "decimal"), new("customer", "string")];

    [Fact]
    public void DisabledUntilAttachedAndAfterDetach()
    {
        var site = TestSites.Static<ProbeArgs<int>>(TestSites.UniqueProvider("enable"), "tick", new ProbeParameter("n", "int"));
        Assert.False(site.IsEnabled);
        int calls = 0;
        using var faults = FaultGuard.For();
        using (faults.Watch(Probes.Attach(site, (in ProbeArgs<int> a) => calls += a.Arg1)))
        {
            Assert.True(site.IsEnabled);
            Assert.Equal(1, site.ConsumerCount);
            site.Fire(new ProbeArgs<int>(5));
        }
        Assert.False(site.IsEnabled);
        site.Fire(new ProbeArgs<int>(7));
        Assert.Equal(5, calls);
    }

    [Fact]
    public void TypedHandlerSeesArgumentsUnboxed()
    {
        var site = TestSites.Static<ProbeArgs<int, decimal, string>>(TestSites.UniqueProvider("orders"), "placed", PlacedParameters);
        var seen = new List<(int, decimal, string)>();
        using var faults = FaultGuard.For();
        using (faults.Watch(Probes.Attach(site, (in ProbeArgs<int, decimal, string> a) => seen.Add((a.Arg1, a.Arg2, a.Arg3)))))
        {
            site.Fire(new ProbeArgs<int, decimal, string>(7, 19.99m, "ada"));
            site.Fire(new ProbeArgs<int, decimal, string>(8, 5m, "bob"));
        }
        Assert.Equal([(7, 19.99m, "ada"), (8, 5m, "bob")], seen);
    }

    [Fact]
    public void TypedHitAllocatesNothing()
    {
        var site = TestSites.Static<ProbeArgs<int, decimal, string>>(TestSites.UniqueProvider("alloc"), "placed", PlacedParameters);
        long sum = 0;
        using var attachment = Probes.Attach(site, (in ProbeArgs<int, decimal, string> a) => sum += a.Arg1);
        using var faults = FaultGuard.For(attachment);
        var args = new ProbeArgs<int, decimal, string>(1, 2m, "c");
        for (int i = 0; i < 1000; i++)
            site.Fire(args);  // warm up: tiering, the thread's reader slot
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
            site.Fire(args);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(11_000, sum);
    }

    [Fact]
    public void UntypedViewShowsEverythingAboutAStaticHit()
    {
        string provider = TestSites.UniqueProvider("view");
        var site = TestSites.Static<ProbeArgs<int, decimal, string>>(provider, "placed", PlacedParameters);
        object?[]? args = null;
        object? byName = null;
        long asInt = 0;
        ProbePoint point = default;
        int thread = 0;
        long timestamp = 0;
        string? id = null;
        // The assertions inside the handler count only through the guard: the runtime contains them.
        using var faults = FaultGuard.For();
        using (faults.Watch(Probes.Attach(provider + ":*", (in ProbeHit hit) =>
        {
            args = [hit.GetArgument(0), hit.GetArgument(1), hit.GetArgument(2)];
            byName = hit.GetArgument("customer");
            hit.TryGetArgumentAsInt64(1, out asInt);
            point = hit.Point;
            thread = hit.ThreadId;
            timestamp = hit.Timestamp;
            id = hit.Probe.Id;
            Assert.Equal(3, hit.ArgumentCount);
            Assert.True(hit.TryGetArgument(0, out int orderId) && orderId == 3);
            Assert.False(hit.TryGetArgument(0, out string? _));
            Assert.False(hit.HasReturnValue);
            bool threw = false;
            try { hit.GetArgument("nope"); }
            catch (ArgumentException) { threw = true; }
            Assert.True(threw);
        })))
        {
            long before = Stopwatch.GetTimestamp();
            site.Fire(new ProbeArgs<int, decimal, string>(3, 12.5m, "eve"));
            Assert.InRange(timestamp, before, Stopwatch.GetTimestamp());
        }
        Assert.Equal([3, 12.5m, "eve"], args!);
        Assert.Equal("eve", byName);
        Assert.Equal(12, asInt);
        Assert.Equal(ProbePoint.Fire, point);
        Assert.Equal(Environment.CurrentManagedThreadId, thread);
        Assert.Equal(provider + ":placed", id);
    }

    [Fact]
    public void MethodSiteFiresEntryAndReturnWithValueElapsedAndException()
    {
        string provider = TestSites.UniqueProvider("payments");
        var site = TestSites.Method<ProbeArgs<string, decimal>, int>(provider, "charge", "int", new("card", "string"), new("amount", "decimal"));
        var hits = new List<(ProbePoint Point, object? Ret, long ElapsedNs, Exception? Ex)>();
        using var faults = FaultGuard.For();
        using (faults.Watch(Probes.Attach(provider + ":charge", (in ProbeHit hit) =>
            hits.Add((hit.Point, hit.ReturnValue, hit.ElapsedNanoseconds, hit.Exception)))))
        {
            var args = new ProbeArgs<string, decimal>("visa", 10m);
            long start = site.Entry(args);
            Thread.Sleep(2);
            site.Return(args, 42, start);

            var boom = new InvalidOperationException("declined");
            start = site.Entry(args);
            Assert.False(site.Throw(args, boom, start));
            site.Return(args, 1, startTimestamp: 0);  // entry not observed

            Assert.Equal(5, hits.Count);
            Assert.Equal(ProbePoint.Entry, hits[0].Point);
            Assert.Equal((ProbePoint.Return, (object?)42), (hits[1].Point, hits[1].Ret));
            Assert.True(hits[1].ElapsedNs >= 1_000_000, $"elapsed {hits[1].ElapsedNs} ns after a 2 ms sleep");
            Assert.Same(boom, hits[3].Ex);
            Assert.Null(hits[3].Ret);
            Assert.Equal(0, hits[4].ElapsedNs);
        }
    }

    [Fact]
    public void TypedMethodHandlersSeeTheResult()
    {
        var site = TestSites.Method<ProbeArgs<int>, string>(TestSites.UniqueProvider("typed"), "lookup", "string", new ProbeParameter("id", "int"));
        string? result = null;
        int entered = 0;
        using var faults = FaultGuard.For();
        using (faults.Watch(Probes.Attach(site, (in ProbeArgs<int> a) => entered = a.Arg1,
                   (in ProbeArgs<int> a, in ProbeReturn<string> r) => result = r.Value)))
        {
            long start = site.Entry(new ProbeArgs<int>(9));
            site.Return(new ProbeArgs<int>(9), "nine", start);
        }
        Assert.Equal(9, entered);
        Assert.Equal("nine", result);
    }

    [Fact]
    public void PatternsMatchByProviderAndByName()
    {
        string p1 = TestSites.UniqueProvider("shop"), p2 = TestSites.UniqueProvider("bank");
        var a = TestSites.Static<ProbeArgs>(p1, "open");
        var b = TestSites.Static<ProbeArgs>(p1, "close");
        var c = TestSites.Static<ProbeArgs>(p2, "close");
        Assert.Equal([p1 + ":close", p1 + ":open"], ProbeCatalog.Match(p1 + ":*").Select(s => s.Descriptor.Id));
        Assert.Equal([c], ProbeCatalog.Match(p2 + ":close"));
        Assert.Equal(2, ProbeCatalog.Match(p1[..^1] + "?:*").Count + ProbeCatalog.Match(p2 + ":*").Count - 1);
        using var counter = Probes.Count("*:close");
        using var faults = FaultGuard.For(counter.Attachment);
        a.Fire(default);
        b.Fire(default);
        c.Fire(default);
        Assert.Equal(1, counter.ByProbe[p1 + ":close"]);
        Assert.Equal(1, counter.ByProbe[p2 + ":close"]);
        Assert.False(counter.ByProbe.ContainsKey(p1 + ":open"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a b")]
    [InlineData("a:b:c")]
    [InlineData(":x")]
    [InlineData("x:")]
    public void BadPatternsAreRejectedClearly(string pattern)
    {
        var ex = Assert.Throws<ArgumentException>(() => Probes.Attach(pattern, (in ProbeHit _) => { }));
        Assert.Contains("pattern", ex.Message);
    }

    [Fact]
    public void PatternAttachmentCoversProbesRegisteredLater()
    {
        string provider = TestSites.UniqueProvider("late");
        using var counter = Probes.Count(provider + ":*");
        using var faults = FaultGuard.For(counter.Attachment);
        var later = TestSites.Static<ProbeArgs>(provider, "loaded");
        Assert.True(later.IsEnabled);
        later.Fire(default);
        later.Fire(default);
        Assert.Equal(2, counter.Total);
        counter.Dispose();
        var afterDetach = TestSites.Static<ProbeArgs>(provider, "afterwards");
        Assert.False(afterDetach.IsEnabled);
    }

    [Fact]
    public void DetachingInsideAHandlerThrowsAClearError()
    {
        var site = TestSites.Static<ProbeArgs>(TestSites.UniqueProvider("self"), "detach");
        ProbeAttachment? attachment = null;
        Exception? thrown = null;
        attachment = Probes.Attach(site, (in ProbeArgs _) =>
        {
            try { attachment!.Dispose(); }
            catch (Exception ex) { thrown = ex; }
        });
        using var faults = FaultGuard.For(attachment);
        site.Fire(default);
        var ioe = Assert.IsType<InvalidOperationException>(thrown);
        Assert.Contains("DetachDeferred", ioe.Message);
        Assert.False(attachment.IsDetached);
        attachment.Dispose();
        Assert.True(attachment.IsDetached);
    }

    [Fact]
    public void DeferredDetachFromInsideAHandlerReturnsAtOnceAndCompletesLater()
    {
        var site = TestSites.Static<ProbeArgs>(TestSites.UniqueProvider("deferred"), "once");
        ProbeAttachment? attachment = null;
        Task? detached = null;
        int calls = 0;
        attachment = Probes.Attach(site, (in ProbeArgs _) =>
        {
            calls++;
            detached = attachment!.DetachDeferred();
            Assert.False(detached.IsCompleted);  // we are still inside the section it waits for
        });
        using var faults = FaultGuard.For(attachment);
        site.Fire(default);
        Assert.False(site.IsEnabled);
        site.Fire(default);
        TaskAssert.Completes(detached!, "the deferred detach");
        Assert.Equal(1, calls);
        Assert.Equal(ProbeDetachReason.Requested, attachment.DetachReason);
    }

    [Fact]
    public void DisposeFromADeferredCallbackAfterADeferredDetachDoesNotDeadlock()
    {
        // The reclaimer runs a callback that disposes an attachment whose deferred detach is
        // queued behind that very callback. Waiting for the deferred detach would never end.
        var site = TestSites.Static<ProbeArgs>(TestSites.UniqueProvider("reclaimer"), "dispose");
        var attachment = Probes.Attach(site, (in ProbeArgs _) => { });
        using var gate = new ManualResetEventSlim();
        var disposed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Probes.Domain.Defer(() =>
        {
            gate.Wait();
            attachment.Dispose();
            disposed.SetResult();
        });
        Task deferred = attachment.DetachDeferred();
        gate.Set();
        TaskAssert.Completes(disposed.Task, "Dispose on the reclaimer thread");
        TaskAssert.Completes(deferred, "the deferred detach");
        Assert.True(attachment.IsDetached);
    }

    [Fact]
    public void ThrowingHandlerIsContainedCountedAndEventuallyDetached()
    {
        var site = TestSites.Static<ProbeArgs<int>>(TestSites.UniqueProvider("faulty"), "hit", new ProbeParameter("n", "int"));
        int healthyCalls = 0;
        using var healthy = Probes.Attach(site, (in ProbeArgs<int> _) => healthyCalls++);
        using var faults = FaultGuard.For(healthy);
        var faulty = Probes.Attach(site, (in ProbeArgs<int> a) => throw new FormatException($"bad {a.Arg1}"),
            new ProbeAttachOptions { MaxFaults = 3 });
        for (int i = 0; i < 5; i++)
            site.Fire(new ProbeArgs<int>(i));  // never throws to the probed code
        TaskAssert.Completes(faulty.Completion, "the auto-detach");
        Assert.Equal(3, faulty.FaultCount);
        Assert.Equal("bad 2", faulty.LastFault!.Message);
        Assert.Equal(ProbeDetachReason.Faulted, faulty.DetachReason);
        Assert.Equal(5, healthyCalls);
        Assert.Equal(1, site.ConsumerCount);
        faulty.Dispose();  // disposing an auto-detached attachment is fine
    }

    /// <summary>
    /// The single-consumer path: one handler, and it throws. The hit does not throw, the fault is
    /// counted, and the hit's read-side section ended (a grace period completes), though the hit
    /// path has no finally. A delivery that let the exception out would fail here twice: the
    /// probed code would see it, and the section would never end.
    /// </summary>
    [Fact]
    public void AThrowingSoleHandlerIsContainedAndItsSectionEnds()
    {
        var site = TestSites.Static<ProbeArgs<int>>(TestSites.UniqueProvider("sole"), "hit", new ProbeParameter("n", "int"));
        using var faulty = Probes.Attach(site, (in ProbeArgs<int> a) => throw new FormatException($"bad {a.Arg1}"),
            new ProbeAttachOptions { MaxFaults = 100 });
        for (int i = 0; i < 3; i++)
            site.Fire(new ProbeArgs<int>(i));
        Assert.Equal(3, faulty.FaultCount);
        Assert.Equal("bad 2", faulty.LastFault!.Message);
        Assert.False(Probes.Domain.ReadOngoing);
        TaskAssert.Completes(Task.Run(Probes.Domain.Synchronize), "a grace period after the faulting hits");
    }

    [Fact]
    public void MaxFaultsMustBePositive()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ProbeAttachOptions { MaxFaults = 0 });
    }

    [Fact]
    public void CatalogDescribesRegisteredProbes()
    {
        string provider = TestSites.UniqueProvider("catalog");
        var site = TestSites.Method<ProbeArgs<int>, NoResult>(provider, "work", null, new ProbeParameter("units", "int"));
        ProbeDescriptor d = Assert.Single(ProbeCatalog.All, p => p.Provider == provider);
        Assert.Same(site.Descriptor, d);
        Assert.Equal(provider + ":work", d.Id);
        Assert.Equal(ProbeKind.Method, d.Kind);
        Assert.Equal([new ProbeParameter("units", "int")], d.Parameters);
        Assert.Equal(("Test.cs", 2), (d.File, d.Line));
        Assert.Equal(typeof(TestSites).Assembly.GetName().Name, d.Assembly);
        Assert.Same(site, ProbeCatalog.Find(provider + ":work"));
        Assert.Null(ProbeCatalog.Find(provider + ":nothing"));
        Assert.Throws<ArgumentException>(() => new ProbeDescriptor("bad:provider", "x", ProbeKind.Static, []));
    }

    [Fact]
    public void ProbesWithTheSameIdInTwoAssembliesBothRegister()
    {
        string provider = TestSites.UniqueProvider("dup");
        var first = TestSites.Static<ProbeArgs>(provider, "same");
        var second = new StaticProbeSite<ProbeArgs>(new ProbeDescriptor(provider, "same", ProbeKind.Static, []));
        ProbeCatalog.Register(typeof(object).Assembly, second);
        using var counter = Probes.Count(provider + ":same");
        using var faults = FaultGuard.For(counter.Attachment);
        first.Fire(default);
        second.Fire(default);
        Assert.Equal(2, counter.Total);
        Assert.Equal(2, ProbeCatalog.Match(provider + ":same").Count);
    }
}
