using System;
using System.Collections.Generic;
using System.Threading;
using Microsoft.Diagnostics.Tracing;
using ProbeGen.Cli.Target;
using ProbeGen.Control;

namespace ProbeGen.Cli.Commands;

/// <summary>
/// The hot path of <c>probegen trace</c>: runs on the session's reader thread and prints each hit
/// as TraceEvent hands it over, straight from the event's bytes, so nothing per hit is copied,
/// queued or handed to another thread. Bind events teach it the probe behind each index.
/// </summary>
/// <remarks>
/// The payloads come from another process and are not trusted: a hit that does not decode, or that
/// names an index no Bind announced, is counted in <see cref="Malformed"/> (the run adds it to its
/// dropped count) and said once on stderr.
/// </remarks>
internal sealed class TraceStream(HitPrinter printer, GuardedOutput output, long? maxEvents, List<TraceFiles.RecordedHit>? recorded, Action stop, int pid)
{
    /// <summary>Serialises the printer between the reader thread (hits, heartbeats) and the main thread (idle flushes, the end).</summary>
    private readonly Lock _gate = new();

    /// <summary>Bindings by index. Written and read only on the reader thread.</summary>
    private HitBinding?[] _bindings = new HitBinding?[16];

    /// <summary>Hits printed. Written under <see cref="_gate"/>.</summary>
    private long _events;

    /// <summary>Set under <see cref="_gate"/> by <see cref="Close"/>: hits still arriving are neither printed nor counted.</summary>
    private bool _closed;

    private long _malformed;
    private int _warned;

    /// <summary>Hits printed so far.</summary>
    public long Events
    {
        get
        {
            lock (_gate)
                return _events;
        }
    }

    /// <summary>Hits that could not be decoded, counted as dropped.</summary>
    public long Malformed => Interlocked.Read(ref _malformed);

    /// <summary>Takes the trace events on the reader thread: true for those consumed here, false for the rest.</summary>
    public unsafe bool Take(TraceEvent e)
    {
        switch ((int)e.ID)
        {
            case ControlProtocol.HitBatchEvent:
                Batch(new ReadOnlySpan<byte>((void*)e.DataStart, e.EventDataLength));
                return true;
            case ControlProtocol.HitEvent:
                Hit(new ReadOnlySpan<byte>((void*)e.DataStart, e.EventDataLength));
                return true;
            case ControlProtocol.BindEvent:
                Bind(e);
                return true;
            case ControlProtocol.LegacyHitEvent:
                Drop($"process {pid} runs an older ProbeGen that sends hits as JSON text; update its ProbeGen package to match this probegen");
                return true;
            case ControlProtocol.HeartbeatEvent:
                // A quiet moment in the stream: what is buffered goes out now, not at the next 48 KB.
                Idle();
                return false;
            default:
                return false;
        }
    }

    /// <summary>Writes out buffered lines and notices a closed stdout; called on either thread.</summary>
    public void Idle()
    {
        lock (_gate)
        {
            if (_closed)
                return;
            printer.Flush();
            output.FlushAndCheck();
        }
    }

    /// <summary>Stops printing: the run is over and its summary comes next.</summary>
    public void Close()
    {
        lock (_gate)
        {
            printer.Flush();
            _closed = true;
        }
    }

    private unsafe void Bind(TraceEvent e)
    {
        var fields = ReplyReader.Decode(ControlProtocol.BindEvent, new ReadOnlySpan<byte>((void*)e.DataStart, e.EventDataLength));
        if (fields?["Index"] is not int index || index < 0 || index > 1 << 20 || fields["Probe"] is not string probe || fields["Parameters"] is not string parameters)
        {
            Drop("a Bind event did not decode");
            return;
        }
        if (index >= _bindings.Length)
            Array.Resize(ref _bindings, Math.Max(_bindings.Length * 2, index + 1));
        _bindings[index] = new HitBinding(probe, parameters.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private void Hit(ReadOnlySpan<byte> payload)
    {
        if (!HitPayloadReader.TryReadEvent(payload, out HitHeader hit, out ReadOnlySpan<byte> data))
        {
            Drop("a hit event has the wrong size or point");
            return;
        }
        lock (_gate)
            PrintUnderGate(in hit, data);
    }

    /// <summary>The next record number expected of each batch, by batch number. Reader thread only.</summary>
    private readonly Dictionary<int, long> _expected = [];

    /// <summary>The most batches tracked: a target has one per thread that hit, so more is not a target speaking the protocol.</summary>
    private const int MaxBatches = 1 << 16;

    private long _lostHits, _gaps;

    /// <summary>Hits that EventPipe lost with whole batches, counted exactly from the gaps in each batch's record numbers.</summary>
    public long LostHits => Interlocked.Read(ref _lostHits);

    /// <summary>How many gaps those were: each is at least one of the events EventPipe reports lost.</summary>
    public long Gaps => Interlocked.Read(ref _gaps);

    private void Batch(ReadOnlySpan<byte> payload)
    {
        if (!HitBatchReader.TryOpen(payload, out HitBatchReader batch))
        {
            Drop("a hit batch has the wrong size");
            return;
        }
        if (_expected.TryGetValue(batch.Batch, out long expected) || _expected.Count < MaxBatches)
        {
            if (batch.First > expected)
            {
                Interlocked.Add(ref _lostHits, batch.First - expected);
                Interlocked.Increment(ref _gaps);
            }
            _expected[batch.Batch] = Math.Max(expected, batch.First + batch.Count);
        }
        int read = 0;
        // One lock for the whole batch: the main thread only takes it to flush when idle, or to close.
        lock (_gate)
        {
            if (Done)
                return;
            while (batch.TryReadNext(out HitHeader hit, out ReadOnlySpan<byte> data))
            {
                PrintUnderGate(in hit, data);
                read++;
            }
        }
        if (!batch.AtEnd)
        {
            // The records after a malformed one cannot be found: each is counted as dropped.
            Interlocked.Add(ref _malformed, Math.Max(1, batch.Count - read) - 1);
            Drop("a hit batch holds a malformed record");
        }
    }

    /// <summary>Prints one hit; the caller holds <see cref="_gate"/>.</summary>
    private void PrintUnderGate(in HitHeader hit, ReadOnlySpan<byte> data)
    {
        HitBinding? binding = (uint)hit.Probe < (uint)_bindings.Length ? _bindings[hit.Probe] : null;
        if (binding is null)
        {
            Drop($"a hit names probe index {hit.Probe}, which no Bind event announced");
            return;
        }
        // Hits in flight when the run stopped: not printed past --max-events, and not after the summary.
        if (Done)
            return;
        if (!printer.TryPrint(binding, in hit, data))
        {
            Drop($"a hit of {binding.Probe} has a malformed payload");
            return;
        }
        if (recorded is not null && printer.Decode(binding, in hit, data) is { } decoded)
            recorded.Add(decoded);
        _events++;
        if (maxEvents is { } limit && _events >= limit)
        {
            // The last line the user asked for goes out now, not when the session has wound down.
            printer.Flush();
            output.FlushAndCheck();
            stop();
        }
    }

    /// <summary>True once nothing more is printed: the run is closed, or --max-events is reached. Under <see cref="_gate"/>.</summary>
    private bool Done => _closed || (maxEvents is { } max && _events >= max);

    private void Drop(string why)
    {
        Interlocked.Increment(ref _malformed);
        if (Interlocked.Exchange(ref _warned, 1) == 0)
            Console.Error.WriteLine($"probegen: {why}; such hits are counted as dropped");
    }
}
