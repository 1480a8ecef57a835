using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using ProbeGen.Concurrency;
using ProbeGen.Registry;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>
/// The registry under the engine's access pattern: a trap handler looks up (device, inode, offset) on
/// every hit (find_uprobe) and takes a reference for the length of the hit, while specs are
/// attached and detached concurrently. No lookup may hand out an entry already reclaimed, and
/// probes that stay attached must always be found.
/// </summary>
public class RegistryAccessTests
{
    private sealed class Probe(UprobeKey key) : RegistryEntry<UprobeKey>(key)
    {
        public volatile bool Reclaimed;

        protected override void OnReclaimed() => Reclaimed = true;
    }

    [Fact]
    public void TrapsLookUpWhileSpecsComeAndGo()
    {
        var domain = new SrcuDomain("uprobes test");
        var registry = new LocklessRegistry<UprobeKey, Probe>(domain);
        const ulong device = 0xfe00, inode = 4242;
        var stable = Enumerable.Range(0, 64).Select(i => new Probe(new UprobeKey(device, inode, 0x1000 + (ulong)i * 16, false))).ToList();
        foreach (Probe p in stable)
            registry.Add(p);

        long traps = 0, missedStable = 0, usedAfterReclaim = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var trappers = Enumerable.Range(0, 2).Select(seed => Task.Factory.StartNew(() =>
        {
            var random = new Random(seed);
            while (!stop.IsCancellationRequested)
            {
                // A trap at a stable probe's address, or at a churning one's.
                bool atStable = random.Next(2) == 0;
                var key = atStable ? stable[random.Next(stable.Count)].Key : new UprobeKey(device, inode, 0x8000 + (ulong)random.Next(64) * 16, false);
                if (registry.TryAcquire(key, out Probe? probe))
                {
                    if (probe!.Reclaimed) Interlocked.Increment(ref usedAfterReclaim);
                    Thread.SpinWait(10);  // the handler runs with the reference held
                    if (probe.Reclaimed) Interlocked.Increment(ref usedAfterReclaim);
                    probe.Release();
                }
                else if (atStable)
                {
                    Interlocked.Increment(ref missedStable);
                }
                Interlocked.Increment(ref traps);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        var attacher = Task.Factory.StartNew(() =>
        {
            var random = new Random(7);
            while (!stop.IsCancellationRequested)
            {
                var probe = new Probe(new UprobeKey(device, inode, 0x8000 + (ulong)random.Next(64) * 16, false));
                if (registry.TryAdd(probe))
                {
                    Thread.SpinWait(random.Next(100));
                    registry.Remove(probe);
                }
            }
        }, TaskCreationOptions.LongRunning);
        Task.WaitAll([.. trappers, attacher]);
        domain.Barrier();

        Assert.Equal(0, Interlocked.Read(ref missedStable));
        Assert.Equal(0, Interlocked.Read(ref usedAfterReclaim));
        Assert.True(traps > 10_000, $"only {traps} traps");
        Assert.All(stable, p => Assert.False(p.Reclaimed));
    }
}
