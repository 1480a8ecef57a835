using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Xunit;
using Xunit.Abstractions;

namespace ProbeGen.Tests;

/// <summary>
/// Threads fire probes while other threads attach and detach at random, for a bounded time.
/// </summary>
public class StressTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(3);

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
            var random = new Random(c);
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var done = new StrongBox();
                    ProbeHandler handler = (in ProbeHit _) =>
                    {
                        if (Volatile.Read(ref done.Value)) Interlocked.Increment(ref violations);
                        if (random.Next(1000) == 0) throw new InvalidOperationException("handler fault");
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

    private sealed class StrongBox
    {
        public bool Value;
    }
}
