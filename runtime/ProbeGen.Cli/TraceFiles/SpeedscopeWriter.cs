using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;

namespace ProbeGen.Cli.TraceFiles;

/// <summary>
/// speedscope's evented format: one profile per thread, each method probe call a frame opened at
/// its start (its return's time minus its duration) and closed at its return, static probes as
/// zero-length frames. A profile's frames must nest; calls on one thread that overlap without
/// nesting (an awaited call whose continuation ran on another thread's timeline) go to a second
/// lane of that thread, and so on, so nothing is dropped or clipped.
/// </summary>
internal static class SpeedscopeWriter
{
    private sealed record Interval(int Frame, long Start, long End);

    public static void Write(Stream output, IEnumerable<RecordedHit> hits)
    {
        var frames = new List<string>();
        var frameIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var byThread = new SortedDictionary<int, List<Interval>>();
        foreach (RecordedHit hit in hits)
        {
            if (hit.Point == "entry")
                continue;
            if (!frameIndex.TryGetValue(hit.Probe, out int frame))
            {
                frameIndex[hit.Probe] = frame = frames.Count;
                frames.Add(hit.Probe);
            }
            long start = hit.Point == "return" ? hit.TimestampNs - hit.ElapsedNs : hit.TimestampNs;
            if (!byThread.TryGetValue(hit.ThreadId, out List<Interval>? list))
                byThread[hit.ThreadId] = list = [];
            // A static probe's instant becomes a 1 ns frame: a frame must open before it closes.
            list.Add(new Interval(frame, start, Math.Max(hit.TimestampNs, start + 1)));
        }
        long origin = byThread.Values.SelectMany(l => l).Select(i => i.Start).DefaultIfEmpty(0).Min();

        using var w = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        w.WriteStartObject();
        w.WriteString("$schema", "https://www.speedscope.app/file-format-schema.json");
        w.WriteString("name", "probegen trace");
        w.WriteString("exporter", "probegen");
        w.WriteStartObject("shared");
        w.WriteStartArray("frames");
        foreach (string name in frames)
        {
            w.WriteStartObject();
            w.WriteString("name", name);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteStartArray("profiles");
        foreach (var (thread, intervals) in byThread)
        {
            List<List<Interval>> lanes = Lanes(intervals);
            for (int lane = 0; lane < lanes.Count; lane++)
                WriteProfile(w, lanes.Count == 1 ? $"thread {thread}" : $"thread {thread} (lane {lane + 1})", lanes[lane], origin);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>Puts each interval, longest-first among those starting together, in the first lane where it nests.</summary>
    private static List<List<Interval>> Lanes(List<Interval> intervals)
    {
        var lanes = new List<(List<Interval> Items, Stack<Interval> Open)>();
        foreach (Interval interval in intervals.OrderBy(i => i.Start).ThenByDescending(i => i.End))
        {
            bool placed = false;
            foreach (var (items, open) in lanes)
            {
                while (open.Count > 0 && open.Peek().End <= interval.Start)
                    open.Pop();
                if (open.Count == 0 || interval.End <= open.Peek().End)
                {
                    items.Add(interval);
                    open.Push(interval);
                    placed = true;
                    break;
                }
            }
            if (!placed)
                lanes.Add(([interval], new Stack<Interval>([interval])));
        }
        return lanes.Select(l => l.Items).ToList();
    }

    /// <summary>Open and close events in time order; a frame closes before one that opens at the same instant, children before parents.</summary>
    private static void WriteProfile(Utf8JsonWriter w, string name, List<Interval> intervals, long origin)
    {
        var events = new List<(long At, int Order, char Type, int Frame)>();
        for (int i = 0; i < intervals.Count; i++)
        {
            Interval interval = intervals[i];
            events.Add((interval.Start - origin, i, 'O', interval.Frame));
            events.Add((interval.End - origin, -i, 'C', interval.Frame));
        }
        // At one instant: closes first (latest-opened first), then opens in the order they were placed.
        events.Sort((a, b) => a.At != b.At ? a.At.CompareTo(b.At) : a.Type != b.Type ? (a.Type == 'C' ? -1 : 1) : a.Order.CompareTo(b.Order));
        w.WriteStartObject();
        w.WriteString("type", "evented");
        w.WriteString("name", name);
        w.WriteString("unit", "nanoseconds");
        w.WriteNumber("startValue", 0);
        w.WriteNumber("endValue", events.Count == 0 ? 0 : events.Max(e => e.At));
        w.WriteStartArray("events");
        foreach (var (at, _, type, frame) in events)
        {
            w.WriteStartObject();
            w.WriteString("type", type.ToString());
            w.WriteNumber("frame", frame);
            w.WriteNumber("at", at);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
