using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using ProbeGen.Control;
using Xunit;

namespace ProbeGen.Tests;

/// <summary>
/// Hits travel in per-thread batches: each hit arrives exactly once and in its thread's order
/// while other threads write the batches out under the owners' feet; a quiet or exited thread's
/// hits go out on the heartbeat; a flush writes everything before it answers; and a batch's
/// record numbers have no gap unless a batch was really lost.
/// </summary>
public class HitBatchTests
{
    private static string NewSession(string prefix) => prefix + Guid.NewGuid().ToString("N")[..12];

    /// <summary>
    /// A thread that lives as long as the test process, for the exit guard to watch in place of a
    /// main thread it never sees here: a session batches only while its exit can be seen coming.
    /// </summary>
    private static readonly Thread s_watched = StartWatched();

    private static Thread StartWatched()
    {
        var thread = new Thread(() => Thread.Sleep(Timeout.Infinite)) { IsBackground = true, Name = "watched by the exit guard" };
        thread.Start();
        return thread;
    }

    /// <summary>Opens a session that always batches, or with <paramref name="adaptive"/> one that batches only busy threads.</summary>
    private static void Trace(string session, string provider, bool adaptive = false)
    {
        ExitGuard.Watch(s_watched);
        var arguments = new Dictionary<string, string?>
        {
            [ControlProtocol.Keys.Session] = session,
            [ControlProtocol.Keys.Command] = "trace",
            [ControlProtocol.Keys.Patterns] = ControlProtocol.Encode(provider + ":*"),
        };
        if (!adaptive)
            arguments[ControlProtocol.Keys.Batch] = "1";
        ControlPlane.OnEnable(arguments);
    }

    [Fact]
    public void AnAdaptiveSessionWritesAQuietHitAtOnceAndHoldsABusyThreadsHits()
    {
        string provider = TestSites.UniqueProvider("adaptive");
        var site = TestSites.Static<ProbeArgs<int>>(provider, "tick", new ProbeParameter("n", "int"));
        string session = NewSession("a");
        using var listener = new SessionListener(session);
        Trace(session, provider, adaptive: true);

        site.Fire(new ProbeArgs<int>(0));
        // A lone hit goes out as it happens, as one batch of one.
        SessionHit first = Assert.Single(listener.Hits());
        Assert.Equal(1, (int)Assert.Single(listener.Of(ControlProtocol.HitBatchEvent)).Payload![2]!);

        // Many hits in a row, microseconds apart: after the first few, the thread holds them.
        Thread.Sleep(5);
        for (int i = 1; i <= 200; i++)
            site.Fire(new ProbeArgs<int>(i));
        int written = listener.Of(ControlProtocol.HitBatchEvent).Sum(e => (int)e.Payload![2]!);
        Assert.InRange(written, 2, 100);
        List<SessionHit> hits = listener.Hits();
        Assert.Equal(Enumerable.Range(0, 201), hits.Select(h => BitConverter.ToInt32(h.Data, 2)));
        Assert.Equal(first.Header, hits[0].Header);
        listener.EndAll();
    }

    [Fact]
    public void HitsFromManyThreadsArriveOnceInOrderWhileOtherThreadsWriteTheBatchesOut()
    {
        string provider = TestSites.UniqueProvider("batch");
        var site = TestSites.Static<ProbeArgs<int>>(provider, "seq", new ProbeParameter("n", "int"));
        string session = NewSession("b");
        using var listener = new SessionListener(session);
        Trace(session, provider);
        Assert.True(site.IsEnabled, "the session did not attach");
        site.Fire(new ProbeArgs<int>(-1));
        Assert.Empty(listener.Of(ControlProtocol.HitBatchEvent));  // held in this thread's batch: the session batches

        const int Threads = 4, PerThread = 20_000;
        using var done = new CountdownEvent(Threads);
        var firing = Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < PerThread; i++)
                site.Fire(new ProbeArgs<int>(i));
            done.Signal();
        })).ToList();
        // Writes every batch out, waiting or not, as the flush and the heartbeat do, as fast as it can.
        var writer = new Thread(() =>
        {
            while (!done.IsSet)
                ControlPlane.FlushAll();
        });
        firing.ForEach(t => t.Start());
        writer.Start();
        firing.ForEach(t => t.Join());
        writer.Join();

        List<SessionHit> hits = listener.Hits().Where(h => h.Header.ThreadId != Environment.CurrentManagedThreadId).ToList();
        Assert.Equal(Threads * PerThread, hits.Count);
        foreach (var thread in hits.GroupBy(h => h.Header.ThreadId))
        {
            int[] values = thread.Select(h => BitConverter.ToInt32(h.Data, 2)).ToArray();
            Assert.Equal(Enumerable.Range(0, PerThread), values);
        }
        // Each batch's writes number their records with no gap and no overlap.
        foreach (var batch in listener.Of(ControlProtocol.HitBatchEvent).GroupBy(e => (int)e.Payload![0]!))
        {
            long next = 0;
            foreach (var e in batch)
            {
                Assert.Equal(next, (long)e.Payload![1]!);
                next += (int)e.Payload[2]!;
            }
        }
        listener.EndAll();
    }

    [Fact]
    public void AThreadThatHitsAndExitsHasItsHitsWrittenByTheHeartbeat()
    {
        string provider = TestSites.UniqueProvider("quiet");
        var site = TestSites.Static<ProbeArgs<int>>(provider, "once", new ProbeParameter("n", "int"));
        string session = NewSession("q");
        using var listener = new SessionListener(session);
        Trace(session, provider);

        var thread = new Thread(() => site.Fire(new ProbeArgs<int>(42)));
        thread.Start();
        thread.Join();
        // No flush here: only the session's own heartbeat can write the batch out.
        Assert.True(SpinWait.SpinUntil(() => listener.Of(ControlProtocol.HitBatchEvent).Count > 0, TimeSpan.FromSeconds(5)), "the heartbeat did not write the batch");
        SessionHit hit = Assert.Single(listener.Hits());
        Assert.Equal("{\"n\":42}", HitView.Of(listener, hit).Args);
        listener.EndAll();
    }

    [Fact]
    public void AFlushWritesEveryEarlierHitBeforeItAnswers()
    {
        string provider = TestSites.UniqueProvider("flush");
        var site = TestSites.Static<ProbeArgs<int>>(provider, "tick", new ProbeParameter("n", "int"));
        string session = NewSession("f");
        using var listener = new SessionListener(session);
        Trace(session, provider);
        for (int i = 0; i < 3; i++)
            site.Fire(new ProbeArgs<int>(i));

        ControlPlane.OnEnable(new Dictionary<string, string?> { [ControlProtocol.Keys.Session] = session, [ControlProtocol.Keys.Command] = "flush" });

        var events = listener.Events.ToList();
        int flushed = events.FindIndex(e => e.EventId == ControlProtocol.FlushedEvent);
        Assert.True(flushed >= 0, "no Flushed answer");
        int lastBatch = events.FindLastIndex(e => e.EventId == ControlProtocol.HitBatchEvent);
        Assert.InRange(lastBatch, 0, flushed - 1);
        Assert.Equal(3, listener.Hits().Count);
        // A flush for a session that does not exist opens nothing and answers nothing.
        ControlPlane.OnEnable(new Dictionary<string, string?> { [ControlProtocol.Keys.Session] = "nosuchsession", [ControlProtocol.Keys.Command] = "flush" });
        Assert.Single(listener.Of(ControlProtocol.FlushedEvent));
        listener.EndAll();
    }

    [Fact]
    public void ABatchReaderRefusesEveryMalformedBatchAndNeverThrows()
    {
        var random = new Random(2026);
        for (int i = 0; i < 20_000; i++)
        {
            byte[] payload = new byte[random.Next(0, 200)];
            random.NextBytes(payload);
            if (i % 2 == 0 && payload.Length >= HitLayout.BatchRecordsOffset)
                BitConverter.TryWriteBytes(payload.AsSpan(HitLayout.BatchRecordsLengthOffset), payload.Length - HitLayout.BatchRecordsOffset);
            if (HitBatchReader.TryOpen(payload, out HitBatchReader reader))
            {
                int read = 0;
                while (reader.TryReadNext(out _, out ReadOnlySpan<byte> data))
                {
                    Assert.True(data.Length <= payload.Length);
                    read++;
                }
                Assert.True(read <= reader.Count);
            }
        }
        // A count larger than the records could hold is refused up front.
        byte[] lying = new byte[HitLayout.BatchRecordsOffset + HitLayout.DataOffset];
        BitConverter.TryWriteBytes(lying.AsSpan(HitLayout.BatchCountOffset), 2);
        BitConverter.TryWriteBytes(lying.AsSpan(HitLayout.BatchRecordsLengthOffset), HitLayout.DataOffset);
        Assert.False(HitBatchReader.TryOpen(lying, out _));
    }
}
