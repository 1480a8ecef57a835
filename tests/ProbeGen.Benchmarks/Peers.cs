using System;
using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.Runtime.CompilerServices;
using System.Threading;

namespace ProbeGen.Benchmarks;

/// <summary>The EventSource peer: a typed event with the same three arguments as the probe, written with WriteEventCore.</summary>
[EventSource(Name = "ProbeGen-Benchmarks-Orders")]
internal sealed class OrdersEventSource : EventSource
{
    public static readonly OrdersEventSource Log = new();

    [Event(1, Level = EventLevel.Informational)]
    public unsafe void Placed(int orderId, double amount, string customer)
    {
        fixed (char* customerChars = customer)
        {
            EventData* data = stackalloc EventData[3];
            data[0] = new EventData { DataPointer = (IntPtr)(&orderId), Size = sizeof(int) };
            data[1] = new EventData { DataPointer = (IntPtr)(&amount), Size = sizeof(double) };
            data[2] = new EventData { DataPointer = (IntPtr)customerChars, Size = (customer.Length + 1) * sizeof(char) };
            WriteEventCore(1, 3, data);
        }
    }
}

/// <summary>
/// The streamed-hit peer: an event with exactly the fields of ProbeGen's binary hit event (int32,
/// uint8, int32, int64, int64, and a byte array of the same length as the storm probe's Data),
/// written with WriteEventCore from a buffer it already has, so it pays only EventPipe's write.
/// </summary>
[EventSource(Name = "ProbeGen-Benchmarks-Hits")]
internal sealed class HitPeerEventSource : EventSource
{
    public static readonly HitPeerEventSource Log = new();

    /// <summary>
    /// The storm probe's Data in the hit layout: the argument count (1), an int32 (1 + 4), a decimal
    /// (1 + 16) and the 3-character string "ada" (1 + 4 + 6).
    /// </summary>
    public const int DataBytes = 1 + 5 + 17 + 11;

    private static readonly byte[] Data = new byte[DataBytes];

    [Event(1, Level = EventLevel.Informational)]
    public void Hit(int Probe, byte Point, int ThreadId, long Timestamp, long ElapsedNs, byte[] Data) =>
        WriteHit(Probe, Point, ThreadId, Timestamp, ElapsedNs);

    [NonEvent]
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Integers and a byte array.")]
    public unsafe void WriteHit(int probe, byte point, int threadId, long timestamp, long elapsedNs)
    {
        int length = DataBytes;
        fixed (byte* bytes = Data)
        {
            EventData* fields = stackalloc EventData[7];
            fields[0] = new EventData { DataPointer = (IntPtr)(&probe), Size = sizeof(int) };
            fields[1] = new EventData { DataPointer = (IntPtr)(&point), Size = sizeof(byte) };
            fields[2] = new EventData { DataPointer = (IntPtr)(&threadId), Size = sizeof(int) };
            fields[3] = new EventData { DataPointer = (IntPtr)(&timestamp), Size = sizeof(long) };
            fields[4] = new EventData { DataPointer = (IntPtr)(&elapsedNs), Size = sizeof(long) };
            fields[5] = new EventData { DataPointer = (IntPtr)(&length), Size = sizeof(int) };
            fields[6] = new EventData { DataPointer = (IntPtr)bytes, Size = length };
            WriteEventCore(1, 7, fields);
        }
    }
}

/// <summary>An in-process EventListener that sums the peer's order ids, as the probe's consumer does.</summary>
internal sealed class CountingListener : EventListener
{
    public long Count;

    public void Enable(EventSource source) => EnableEvents(source, EventLevel.Verbose);

    protected override void OnEventWritten(EventWrittenEventArgs eventData) => Count += (int)eventData.Payload![0]!;
}

/// <summary>The DiagnosticSource peer's payload: a typed object, the cheapest payload a subscriber can read without reflection.</summary>
internal sealed record PlacedPayload(int OrderId, decimal Amount, string Customer);

/// <summary>A DiagnosticListener subscriber that sums the peer's order ids, as the probe's consumer does.</summary>
internal sealed class CountingObserver : IObserver<System.Collections.Generic.KeyValuePair<string, object?>>, IObserver<DiagnosticListener>
{
    public long Count;

    public void OnNext(System.Collections.Generic.KeyValuePair<string, object?> value) => Count += ((PlacedPayload)value.Value!).OrderId;

    public void OnNext(DiagnosticListener value) { }

    public void OnCompleted() { }

    public void OnError(Exception error) { }
}

/// <summary>
/// Runs a body on the calling thread and on one helper thread at once, for the 2-thread rows.
/// Waking the helper costs a few microseconds, against milliseconds of work per run.
/// </summary>
internal sealed class TwoThreadRunner : IDisposable
{
    private readonly Thread _helper;
    // The helper blocks between runs rather than spinning: a spinning helper takes the second of
    // two cores from every one-thread row of the same class, and starts a run late when the
    // scheduler has just preempted its yield loop.
    private readonly SemaphoreSlim _go = new(0);
    private readonly ManualResetEventSlim _done = new();
    private Action? _body;
    private volatile bool _stop;

    public TwoThreadRunner()
    {
        _helper = new Thread(HelperLoop) { IsBackground = true, Name = "benchmark helper" };
        _helper.Start();
    }

    public void Run(Action body)
    {
        _body = body;
        _done.Reset();
        _go.Release();
        body();
        _done.Wait();
    }

    public void Dispose()
    {
        _stop = true;
        _go.Release();
        _helper.Join();
        _go.Dispose();
        _done.Dispose();
    }

    private void HelperLoop()
    {
        while (true)
        {
            _go.Wait();
            if (_stop)
                return;
            _body!();
            _done.Set();
        }
    }
}

/// <summary>Keeps results alive so the JIT cannot drop the measured work.</summary>
internal static class Sink
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Consume<T>(T value) { }
}
