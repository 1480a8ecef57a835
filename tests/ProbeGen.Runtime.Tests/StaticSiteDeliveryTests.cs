using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace ProbeGen.Tests;

/// <summary>
/// A static site calls a sole consumer without looking at its array of bindings, and ends the hit's
/// read-side section with one store of the count it found. These tests pin down both shortcuts:
/// the consumer set a hit sees as consumers come and go, and the count a hit leaves behind when
/// its handler opens sections of its own.
/// </summary>
public class StaticSiteDeliveryTests
{
    [Fact]
    public void AHitReachesExactlyTheAttachedConsumersAsTheyGoFromOneToTwoToOneToNone()
    {
        var site = TestSites.Static<ProbeArgs<int>>(TestSites.UniqueProvider("sole"), "hit", new ProbeParameter("n", "int"));
        var seen = new List<string>();
        using var faults = FaultGuard.For();

        ProbeAttachment first = faults.Watch(Probes.Attach(site, (in ProbeArgs<int> a) => seen.Add($"first {a.Arg1}")));
        site.Fire(new ProbeArgs<int>(1));
        ProbeAttachment second = faults.Watch(Probes.Attach(site, (in ProbeArgs<int> a) => seen.Add($"second {a.Arg1}")));
        site.Fire(new ProbeArgs<int>(2));
        first.Dispose();
        site.Fire(new ProbeArgs<int>(3));  // the survivor alone, on the sole-consumer path again
        second.Dispose();
        site.Fire(new ProbeArgs<int>(4));

        Assert.Equal(["first 1", "first 2", "second 2", "second 3"], seen);
        Assert.False(site.IsEnabled);
        Assert.Equal(0, site.ConsumerCount);
    }

    [Fact]
    public void AHitLeavesTheSectionCountAsItFoundItWhateverSectionsItsHandlerOpens()
    {
        string provider = TestSites.UniqueProvider("nest");
        var outer = TestSites.Static<ProbeArgs<int>>(provider, "outer", new ProbeParameter("n", "int"));
        var inner = TestSites.Static<ProbeArgs<int>>(provider, "inner", new ProbeParameter("n", "int"));
        int innerHits = 0, sawSection = 0;
        using var innerAttachment = Probes.Attach(inner, (in ProbeArgs<int> _) => innerHits++);
        // The handler fires a nested probe, opens a section of the same domain, and every other
        // hit throws from inside one: each of those sections ends before the handler returns.
        using var outerAttachment = Probes.Attach(outer, (in ProbeArgs<int> a) =>
        {
            if (Probes.Domain.ReadOngoing)
                sawSection++;
            inner.Fire(new ProbeArgs<int>(a.Arg1));
            using (Probes.Domain.Enter())
            {
                if (a.Arg1 % 2 == 1)
                    throw new FormatException("odd");
            }
        }, new ProbeAttachOptions { MaxFaults = int.MaxValue });

        // Grace periods flip the domain's index meanwhile, so the nested sections and the hit's
        // own may count under different indexes.
        using var stop = new CancellationTokenSource();
        Task flipper = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
                Probes.Domain.Synchronize();
        });
        const int Hits = 20_000;
        for (int i = 0; i < Hits; i++)
        {
            outer.Fire(new ProbeArgs<int>(i));
            Assert.False(Probes.Domain.ReadOngoing);
        }
        stop.Cancel();
        TaskAssert.Completes(flipper, "the grace periods that ran beside the hits");

        Assert.Equal(Hits, sawSection);
        Assert.Equal(Hits, innerHits);
        Assert.Equal(Hits / 2, outerAttachment.FaultCount);
        TaskAssert.Completes(Task.Run(Probes.Domain.Synchronize), "a grace period after the hits");
    }
}
