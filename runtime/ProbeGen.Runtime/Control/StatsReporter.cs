using System.Collections.Generic;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Threading;
using F = ProbeGen.Control.ControlProtocol.StatsFields;

namespace ProbeGen.Control;

/// <summary>A stats session's aggregation: a hit counter and a latency histogram over its patterns, written as a snapshot each interval.</summary>
internal sealed class StatsReporter
{
    private readonly CallCounter _calls = new();
    private readonly ProbeAttachment _callsAttachment;
    private readonly ProbeHistogram _latency;
    private long _lastSnapshot = Stopwatch.GetTimestamp();

    /// <summary>Attaches a call and error counter and a latency histogram, each once, to every probe <paramref name="pattern"/> matches.</summary>
    public StatsReporter(ProbePattern pattern)
    {
        _callsAttachment = Probes.Attach(pattern, _calls, ProbeAttachOptions.Default with { Points = ProbePoints.Fire | ProbePoints.Return });
        _latency = new ProbeHistogram(null);
        _latency.Attachment = Probes.Attach(pattern, _latency, ProbeAttachOptions.Default with { Points = ProbePoints.Return });
    }

    /// <summary>What the session detaches when it ends.</summary>
    public IEnumerable<ProbeAttachment> Attachments => [_callsAttachment, _latency.Attachment];

    /// <summary>The snapshot JSON; see <see cref="ControlProtocol.StatsFields"/>. Called from the session's timer only.</summary>
    public string Snapshot()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            // The real time since the previous snapshot: snapshots leave on heartbeat ticks, so
            // the CLI computes rates from this, not from the interval it asked for.
            long now = Stopwatch.GetTimestamp();
            w.WriteNumber(F.ElapsedMs, Stopwatch.GetElapsedTime(_lastSnapshot, now).TotalMilliseconds);
            _lastSnapshot = now;
            w.WriteStartArray(F.Probes);
            var histograms = new Dictionary<string, Log2Histogram>(System.StringComparer.Ordinal);
            foreach (var (probe, histogram) in _latency.ByProbe)
                histograms[probe.Id] = histogram;
            foreach (var (id, counts) in _calls.ByProbe)
            {
                w.WriteStartObject();
                w.WriteString(F.Probe, id);
                w.WriteNumber(F.Count, Interlocked.Read(ref counts.Calls));
                w.WriteNumber(F.Errors, Interlocked.Read(ref counts.Errors));
                w.WriteStartArray(F.LatencyNs);
                if (histograms.TryGetValue(id, out Log2Histogram? histogram))
                {
                    long[] buckets = histogram.Snapshot();
                    for (int b = 0; b < buckets.Length; b++)
                    {
                        if (buckets[b] == 0)
                            continue;
                        w.WriteStartArray();
                        w.WriteNumberValue(b);
                        w.WriteNumberValue(buckets[b]);
                        w.WriteEndArray();
                    }
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
