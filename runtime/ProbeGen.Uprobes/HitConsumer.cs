using System;
using System.Threading;

namespace ProbeGen.Uprobes;

/// <summary>
/// A session's consumer, called so that what it does cannot hurt the engine. Hits arrive on the
/// engine's own threads (the perf ring reader, the ptrace tracer): an exception that escaped would
/// end the process or the trace. Each one is contained, counted and kept instead, as
/// <see cref="ProbeAttachment"/> does for managed handlers.
/// </summary>
/// <remarks>
/// The engine calls <see cref="Deliver(UprobeHit)"/> outside every read-side section of
/// <see cref="Probes.Domain"/>, holding a reference to the probe instead: a consumer that blocks
/// delays only its own session, never a grace period of the process.
/// </remarks>
internal sealed class HitConsumer
{
    private readonly Action<UprobeHit>? _onHit;
    private readonly RawUprobeHitHandler? _onRawHit;

    /// <summary>A consumer of decoded hits.</summary>
    public HitConsumer(Action<UprobeHit> onHit) => _onHit = onHit;

    /// <summary>A consumer of hits read in place (the jump backend's allocation-free path).</summary>
    public HitConsumer(RawUprobeHitHandler onRawHit) => _onRawHit = onRawHit;

    /// <summary>Whether the consumer takes <see cref="RawUprobeHit"/>s rather than decoded hits.</summary>
    public bool TakesRaw => _onRawHit is not null;

    /// <summary>Exceptions contained so far. Incremented by the delivering thread; read by anyone.</summary>
    private long _faults;

    /// <summary>The most recent exception. Written by the delivering thread; read by anyone.</summary>
    private Exception? _lastFault;

    /// <summary>Consumer exceptions contained so far.</summary>
    public long FaultCount => Interlocked.Read(ref _faults);

    /// <summary>The most recent consumer exception, if any.</summary>
    public Exception? LastFault => Volatile.Read(ref _lastFault);

    /// <summary>Calls the consumer; an exception it throws is counted and kept, never rethrown.</summary>
    public void Deliver(UprobeHit hit)
    {
        try
        {
            _onHit!(hit);
        }
        catch (Exception ex)
        {
            Contain(ex);
        }
    }

    /// <summary>Calls the consumer of raw hits (<see cref="TakesRaw"/>); an exception it throws is counted and kept, never rethrown.</summary>
    public void Deliver(in RawUprobeHit hit)
    {
        try
        {
            _onRawHit!(in hit);
        }
        catch (Exception ex)
        {
            Contain(ex);
        }
    }

    private void Contain(Exception ex)
    {
        // The last fault is written before the count: a reader that sees the count move sees
        // this fault or a later one.
        Volatile.Write(ref _lastFault, ex);
        Interlocked.Increment(ref _faults);
    }
}
