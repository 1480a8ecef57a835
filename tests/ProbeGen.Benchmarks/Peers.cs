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
/// The helper spins on a generation counter between runs, so starting a run costs one store.
/// </summary>
internal sealed class TwoThreadRunner : IDisposable
{
    private readonly Thread _helper;
    private Action? _body;
    private int _generation, _done;
    private volatile bool _stop;

    public TwoThreadRunner()
    {
        _helper = new Thread(HelperLoop) { IsBackground = true, Name = "benchmark helper" };
        _helper.Start();
    }

    public void Run(Action body)
    {
        _body = body;
        Volatile.Write(ref _done, 0);
        Interlocked.Increment(ref _generation);
        body();
        var spin = new SpinWait();
        while (Volatile.Read(ref _done) == 0)
            spin.SpinOnce(sleep1Threshold: -1);
    }

    public void Dispose()
    {
        _stop = true;
        Interlocked.Increment(ref _generation);
        _helper.Join();
    }

    private void HelperLoop()
    {
        int seen = 0;
        while (true)
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref _generation) == seen)
                spin.SpinOnce(sleep1Threshold: -1);
            seen = Volatile.Read(ref _generation);
            if (_stop)
                return;
            _body!();
            Volatile.Write(ref _done, 1);
        }
    }
}

/// <summary>Keeps results alive so the JIT cannot drop the measured work.</summary>
internal static class Sink
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Consume<T>(T value) { }
}
