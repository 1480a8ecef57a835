using System.Diagnostics.Tracing;
using System;
using System.Collections.Generic;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;
using ProbeGen.Concurrency;
using ProbeGen.Internal;
using Xunit;

// Tests share the process-wide catalog, the handler SRCU domain and the interleaving hooks;
// running them one at a time keeps each test's interleavings its own.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace ProbeGen.Tests;

/// <summary>Builds and registers probe sites the way generated code does.</summary>
internal static class TestSites
{
    private static int s_provider;

    /// <summary>A provider name no other test uses, so patterns stay within one test.</summary>
    public static string UniqueProvider(string stem) => $"{stem}{Interlocked.Increment(ref s_provider)}";

    public static StaticProbeSite<TArgs> Static<TArgs>(string provider, string name, params ProbeParameter[] parameters)
        where TArgs : struct, IProbeArgs
    {
        var site = new StaticProbeSite<TArgs>(new ProbeDescriptor(provider, name, ProbeKind.Static, parameters, file: "Test.cs", line: 1));
        ProbeCatalog.Register(typeof(TestSites).Assembly, site);
        return site;
    }

    public static MethodProbeSite<TArgs, TResult> Method<TArgs, TResult>(string provider, string name, string? returnType, params ProbeParameter[] parameters)
        where TArgs : struct, IProbeArgs
    {
        var site = new MethodProbeSite<TArgs, TResult>(new ProbeDescriptor(provider, name, ProbeKind.Method, parameters, returnType, "Test.cs", 2));
        ProbeCatalog.Register(typeof(TestSites).Assembly, site);
        return site;
    }
}

/// <summary>
/// Parks one chosen thread at one hook point until the test releases it: the building block of
/// the deterministic interleaving tests.
/// </summary>
internal sealed class HookGate : IDisposable
{
    private readonly HookPoint _point;
    private readonly Func<object?, bool> _when;
    private readonly ManualResetEventSlim _arrived = new();
    private readonly ManualResetEventSlim _release = new();
    private Thread? _thread;
    private int _armed = 1;

    public HookGate(HookPoint point, Func<object?, bool>? when = null)
    {
        Assert.True(TestHooks.Enabled, "the test project must set the ProbeGen.EnableTestHooks switch");
        _point = point;
        _when = when ?? (_ => true);
        // Added, not assigned: a test may park one thread and watch another hook at once.
        TestHooks.Callback += OnHook;
    }

    /// <summary>Only this thread is parked; other threads pass the hook.</summary>
    public void ParkThread(Thread thread) => _thread = thread;

    public void WaitUntilParked()
    {
        if (!_arrived.Wait(TimeSpan.FromSeconds(30)))
            throw new TimeoutException($"no thread reached {_point}");
    }

    public void Release() => _release.Set();

    public void Dispose()
    {
        TestHooks.Callback -= OnHook;
        _release.Set();
    }

    private void OnHook(HookPoint point, object? subject)
    {
        if (point != _point || (_thread is not null && Thread.CurrentThread != _thread) || !_when(subject))
            return;
        if (Interlocked.Exchange(ref _armed, 0) == 0)
            return;
        _arrived.Set();
        _release.Wait();
    }
}

/// <summary>
/// Makes handler faults fail the test. The runtime contains every exception a handler throws, an
/// assertion's included, and only counts it: an assertion inside a handler cannot fail a test by
/// itself. Disposing the guard rethrows, unchanged, the first fault of the first watched
/// attachment that had one, so a failed assertion in a handler reports as itself.
/// </summary>
/// <example><code>
/// using var faults = FaultGuard.For(attachment);
/// using (faults.Watch(Probes.Attach(...))) { ... }
/// </code></example>
internal sealed class FaultGuard : IDisposable
{
    private readonly List<ProbeAttachment> _watched = [];

    private FaultGuard()
    {
    }

    public static FaultGuard For(params ProbeAttachment[] attachments)
    {
        var guard = new FaultGuard();
        guard._watched.AddRange(attachments);
        return guard;
    }

    /// <summary>Watches one more attachment and hands it back, so it can be written around an Attach call.</summary>
    public ProbeAttachment Watch(ProbeAttachment attachment)
    {
        _watched.Add(attachment);
        return attachment;
    }

    /// <summary>Rethrows the first handler fault, if any. Runs even when the test body threw: the fault is usually the cause.</summary>
    public void Dispose()
    {
        foreach (ProbeAttachment attachment in _watched)
        {
            if (attachment.FaultCount == 0)
                continue;
            Exception first = attachment.FirstFault
                ?? throw new Xunit.Sdk.XunitException($"{attachment}: {attachment.FaultCount} handler faults but no first fault recorded");
            ExceptionDispatchInfo.Capture(first).Throw();
        }
    }
}

/// <summary>
/// Completes once a grace period of <c>domain</c> is seen waiting for <c>reader</c>'s read-side
/// section. The hook reports every round of the wait, so the signal can be set up after the wait began.
/// </summary>
internal sealed class ReaderWaitSignal : IDisposable
{
    private readonly SrcuDomain _domain;
    private readonly Thread _reader;
    private readonly TaskCompletionSource _seen = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ReaderWaitSignal(SrcuDomain domain, Thread reader)
    {
        Assert.True(TestHooks.Enabled, "the test project must set the ProbeGen.EnableTestHooks switch");
        _domain = domain;
        _reader = reader;
        TestHooks.Callback += OnHook;
    }

    public Task Seen => _seen.Task;

    public void Dispose() => TestHooks.Callback -= OnHook;

    private void OnHook(HookPoint point, object? subject)
    {
        if (point == HookPoint.SrcuWaitingForReader && subject is ReaderSlot slot
            && ReferenceEquals(slot.Domain, _domain) && slot.Owner == _reader)
            _seen.TrySetResult();
    }
}

internal static class TaskAssert
{
    /// <summary>
    /// Asserts that <paramref name="task"/> is blocked waiting for a grace period of
    /// <paramref name="domain"/> that waits for <paramref name="reader"/>, a thread the test keeps
    /// inside a read-side section. No timeout decides it: either the task completes first (it did
    /// not wait for the reader: fail), or the grace period is seen waiting for the reader (pass).
    /// The 30 s bound only stops a test whose task neither completes nor waits.
    /// </summary>
    public static void StillWaitingFor(Task task, SrcuDomain domain, Thread reader, string because)
    {
        using var waiting = new ReaderWaitSignal(domain, reader);
        Task.WaitAny([task, waiting.Seen], TimeSpan.FromSeconds(30));
        Assert.False(task.IsCompleted, because);
        Assert.True(waiting.Seen.IsCompleted, $"no grace period of '{domain.Name}' started waiting for the reader within 30 s ({because})");
    }

    public static void Completes(Task task, string what)
    {
        Assert.True(task.Wait(TimeSpan.FromSeconds(30)), $"{what} did not complete within 30 s");
    }
}

/// <summary>
/// Stands in for the CLI's EventPipe session: enables every session reply source whose name
/// starts with <c>ProbeGen-{prefix}</c>, records their events, and can end those sessions as a
/// CLI leaving would.
/// </summary>
internal sealed class SessionListener(string prefix) : EventListener
{
    public readonly System.Collections.Concurrent.ConcurrentQueue<EventWrittenEventArgs> Events = new();
    private readonly System.Collections.Concurrent.ConcurrentBag<EventSource> _sources = [];

    protected override void OnEventSourceCreated(EventSource source)
    {
        // The base constructor reports existing sources before the primary constructor has run.
        if (prefix is not null && source.Name.StartsWith(ProbeGen.Control.ControlProtocol.SessionProviderName(prefix), System.StringComparison.Ordinal))
        {
            _sources.Add(source);
            EnableEvents(source, EventLevel.Verbose);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e) => Events.Enqueue(e);

    public System.Collections.Generic.List<EventWrittenEventArgs> Of(int id) => System.Linq.Enumerable.ToList(System.Linq.Enumerable.Where(Events, e => e.EventId == id));

    /// <summary>
    /// Every hit received so far, each with the event that carried it, after the sessions' threads
    /// wrote out their batches: hits come in HitBatch events, or one per Hit event when unbatched.
    /// </summary>
    public System.Collections.Generic.List<SessionHit> Hits()
    {
        ProbeGen.Control.ControlPlane.FlushAll();
        var hits = new System.Collections.Generic.List<SessionHit>();
        foreach (EventWrittenEventArgs e in Events)
        {
            if (e.EventId == ProbeGen.Control.ControlProtocol.HitEvent)
            {
                var p = e.Payload!;
                hits.Add(new SessionHit(new ProbeGen.Control.HitHeader((int)p[0]!, (ProbePoint)(byte)p[1]!, (int)p[2]!, (long)p[3]!, (long)p[4]!), (byte[])p[5]!, e));
            }
            else if (e.EventId == ProbeGen.Control.ControlProtocol.HitBatchEvent)
            {
                var p = e.Payload!;
                byte[] records = (byte[])p[3]!;
                byte[] payload = new byte[ProbeGen.Control.HitLayout.BatchRecordsOffset + records.Length];
                System.BitConverter.TryWriteBytes(payload.AsSpan(ProbeGen.Control.HitLayout.BatchOffset), (int)p[0]!);
                System.BitConverter.TryWriteBytes(payload.AsSpan(ProbeGen.Control.HitLayout.BatchFirstOffset), (long)p[1]!);
                System.BitConverter.TryWriteBytes(payload.AsSpan(ProbeGen.Control.HitLayout.BatchCountOffset), (int)p[2]!);
                System.BitConverter.TryWriteBytes(payload.AsSpan(ProbeGen.Control.HitLayout.BatchRecordsLengthOffset), records.Length);
                records.CopyTo(payload.AsSpan(ProbeGen.Control.HitLayout.BatchRecordsOffset));
                Xunit.Assert.True(ProbeGen.Control.HitBatchReader.TryOpen(payload, out var batch), "a malformed batch");
                while (batch.TryReadNext(out var header, out var data))
                    hits.Add(new SessionHit(header, data.ToArray(), e));
                Xunit.Assert.True(batch.AtEnd, "a batch with a malformed record");
            }
        }
        return hits;
    }

    /// <summary>Ends every session so far, as a CLI leaving would.</summary>
    public void EndAll()
    {
        foreach (EventSource source in _sources)
            DisableEvents(source);
    }
}

/// <summary>One hit a session sent: its fixed fields, its Data, and the event that carried it.</summary>
internal sealed record SessionHit(ProbeGen.Control.HitHeader Header, byte[] Data, EventWrittenEventArgs Event);

/// <summary>A hit event read back as <c>probegen</c> prints it: the probe its Bind named, and JSON text for the values.</summary>
internal sealed record HitView(string Probe, ProbePoint Point, string Args, string Ret, string Exception)
{
    /// <summary>Everything a reader of the hit sees, for checks that something never appears in it.</summary>
    public string All => $"{Probe} {Args} {Ret} {Exception}";

    /// <summary>Decodes a hit event that <paramref name="listener"/> received, with the Bind event it received before it.</summary>
    public static HitView Of(SessionListener listener, SessionHit hit)
    {
        int index = hit.Header.Probe;
        var bind = System.Linq.Enumerable.First(listener.Of(ProbeGen.Control.ControlProtocol.BindEvent), b => (int)b.Payload![0]! == index);
        string[] names = ((string)bind.Payload![3]!).Split('\n', System.StringSplitOptions.RemoveEmptyEntries);
        var point = hit.Header.Point;
        var reader = new ProbeGen.Control.HitPayloadReader(hit.Data);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var w = new System.Text.Json.Utf8JsonWriter(buffer, new System.Text.Json.JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        Xunit.Assert.True(reader.TryReadCount(out int count));
        w.WriteStartObject();
        for (int i = 0; i < count; i++)
        {
            w.WritePropertyName(i < names.Length ? names[i] : "arg" + i);
            Xunit.Assert.True(reader.TryWriteValue(w), "a malformed argument");
        }
        w.WriteEndObject();
        string args = Take(w, buffer);
        string ret = "", exception = "";
        if (point == ProbePoint.Return)
        {
            Xunit.Assert.True(reader.TryReadAbsent(out bool noValue));
            if (!noValue)
            {
                Xunit.Assert.True(reader.TryWriteValue(w));
                ret = Take(w, buffer);
            }
            Xunit.Assert.True(reader.TryReadAbsent(out bool noException));
            if (!noException)
            {
                Xunit.Assert.True(reader.TryReadText(out System.ReadOnlySpan<char> text));
                exception = text.ToString();
            }
        }
        Xunit.Assert.True(reader.AtEnd, "bytes left over after the hit's values");
        return new HitView((string)bind.Payload[1]!, point, args, ret, exception);
    }

    /// <summary>The JSON written so far, and a writer ready for the next value.</summary>
    private static string Take(System.Text.Json.Utf8JsonWriter w, System.Buffers.ArrayBufferWriter<byte> buffer)
    {
        w.Flush();
        string text = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
        buffer.ResetWrittenCount();
        w.Reset(buffer);
        return text;
    }
}
