using System;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>
/// The perf backend's consumer contract: hits are handed over outside every read-side section of
/// <see cref="Probes.Domain"/>, under a reference to the probe (a thrown exception is the shared
/// contract, in <see cref="BackendTests"/>).
/// </summary>
public class PerfConsumerTests(NativeTargets targets) : IClassFixture<NativeTargets>
{
    /// <summary>Another probe in the shared registry, whose detach must not wait for a blocked consumer.</summary>
    private sealed class Neighbour(UprobeKey key) : UprobeEntry(key, UprobeSpec.Parse("/neighbour:0x1"))
    {
        public volatile bool Reclaimed;

        protected override void OnReclaimed() => Reclaimed = true;
    }

    [Fact]
    public void ABlockedConsumerHoldsUpNoGracePeriod()
    {
        string t = targets["targets"];
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        bool? insideSection = null;
        void Consume(UprobeHit hit)
        {
            if (entered.IsSet)
                return;
            insideSection = Probes.Domain.ReadOngoing;
            entered.Set();
            release.Wait();
        }

        using PerfUprobeSession session = PerfUprobeSession.Launch([UprobeSpec.Parse($"{t}:greet(str,i32)")], [t, "5", "1"], Consume, standardOutput: -1);
        try
        {
            Assert.True(entered.Wait(TimeSpan.FromSeconds(60)), "no hit reached the consumer");
            Assert.False(insideSection, "the consumer runs inside a read-side section");

            // While the consumer is blocked, another probe is detached and reclaimed: that takes a
            // full grace period of the process-wide domain. The bound only turns a deadlock into a
            // failure; the detach completes at once unless the blocked consumer holds a section.
            var neighbour = new Neighbour(new UprobeKey(ulong.MaxValue, ulong.MaxValue, 0x1, false));
            UprobeRegistry.Probes.Add(neighbour);
            var detach = Task.Run(() =>
            {
                UprobeRegistry.Probes.Remove(neighbour);
                Probes.Domain.Barrier();
            });
            Assert.True(detach.Wait(TimeSpan.FromSeconds(30)), "a detach waited for a blocked consumer");
            Assert.True(neighbour.Reclaimed);
            Assert.False(release.IsSet);  // the consumer was still blocked throughout
        }
        finally
        {
            release.Set();
        }
        Assert.True(session.WaitForEnd(TimeSpan.FromSeconds(60)));
        Assert.Equal(0, session.ExitCode);
        Assert.Equal(0, session.FaultCount);
    }
}
