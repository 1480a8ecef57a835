using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Text.Json;
using ProbeGen.Control;
using Spectre.Console;
using Spectre.Console.Rendering;
using F = ProbeGen.Control.ControlProtocol.StatsFields;

namespace ProbeGen.Cli.Commands;

/// <summary>
/// What <c>probegen stats</c> shows: per probe calls, rate, errors and latency percentiles, and a
/// titled log2 histogram. Percentiles come from the target's log2 buckets, so each is the upper
/// bound of the bucket it falls in: at most 2x the true value, never below it.
/// </summary>
internal sealed class StatsView(int pid, TimeSpan interval, bool all)
{
    private readonly Dictionary<string, long> _previous = new(StringComparer.Ordinal);
    private readonly DateTime _started = DateTime.UtcNow;
    private List<Row> _rows = [];

    /// <summary>One probe in one snapshot.</summary>
    private sealed record Row(string Probe, long Calls, long Errors, double Rate, (int Bucket, long Count)[] Buckets)
    {
        public long Recorded => Buckets.Sum(b => b.Count);
    }

    /// <summary>Drops counted so far, for the status line.</summary>
    public long Dropped { get; set; }

    /// <summary>Reads a snapshot from the target.</summary>
    public void Update(string snapshot)
    {
        using JsonDocument doc = JsonDocument.Parse(snapshot);
        // Rates over the time the target says passed since its previous snapshot.
        TimeSpan elapsed = doc.RootElement.TryGetProperty(F.ElapsedMs, out JsonElement ms) && ms.GetDouble() > 0 ? TimeSpan.FromMilliseconds(ms.GetDouble()) : interval;
        var rows = new List<Row>();
        foreach (JsonElement p in doc.RootElement.GetProperty(F.Probes).EnumerateArray())
        {
            string probe = p.GetProperty(F.Probe).GetString()!;
            long calls = p.GetProperty(F.Count).GetInt64();
            long errors = p.TryGetProperty(F.Errors, out JsonElement e) ? e.GetInt64() : 0;
            double rate = (calls - _previous.GetValueOrDefault(probe)) / elapsed.TotalSeconds;
            _previous[probe] = calls;
            var buckets = p.GetProperty(F.LatencyNs).EnumerateArray().Select(b => (b[0].GetInt32(), b[1].GetInt64())).ToArray();
            if (all || calls > 0)  // 588 probes of a library, most never hit, would bury the few that are
                rows.Add(new Row(probe, calls, errors, rate, buckets));
        }
        _rows = rows.OrderByDescending(r => r.Calls).ThenBy(r => r.Probe, StringComparer.Ordinal).ToList();
    }

    /// <summary>The snapshot as one JSON line (for --json and pipes that want it).</summary>
    public string JsonLine()
    {
        var buffer = new System.IO.MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteNumber("ts", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000);
            w.WriteStartArray("probes");
            foreach (Row r in _rows)
            {
                w.WriteStartObject();
                w.WriteString("probe", r.Probe);
                w.WriteNumber("count", r.Calls);
                w.WriteNumber("errors", r.Errors);
                w.WriteNumber("rate", Math.Round(r.Rate, 1));
                if (r.Recorded > 0)
                {
                    w.WriteNumber("p50_ns", Percentile(r, 0.50));
                    w.WriteNumber("p95_ns", Percentile(r, 0.95));
                    w.WriteNumber("p99_ns", Percentile(r, 0.99));
                    w.WriteNumber("max_ns", Percentile(r, 1.0));
                }
                w.WriteStartArray("latency_ns");
                foreach (var (bucket, count) in r.Buckets)
                {
                    w.WriteStartArray();
                    w.WriteNumberValue(Low(bucket));
                    w.WriteNumberValue(High(bucket));
                    w.WriteNumberValue(count);
                    w.WriteEndArray();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>The snapshot as plain text, for a pipe: the status line, the table, and every histogram.</summary>
    public string PlainText()
    {
        var text = new StringBuilder().AppendLine(StatusLine());
        int width = Math.Max(20, _rows.Count == 0 ? 0 : _rows.Max(r => r.Probe.Length));
        text.AppendLine($"{"PROBE".PadRight(width)} {"CALLS",10} {"RATE/s",10} {"ERRORS",8} {"P50",10} {"P95",10} {"P99",10} {"MAX",10}");
        foreach (Row r in _rows)
            text.AppendLine(CultureInfo.InvariantCulture, $"{r.Probe.PadRight(width)} {r.Calls,10} {r.Rate,10:F1} {r.Errors,8} {Latency(r, 0.5),10} {Latency(r, 0.95),10} {Latency(r, 0.99),10} {Latency(r, 1),10}");
        foreach (Row r in _rows.Where(r => r.Recorded > 0))
            text.Append(HistogramText(r));
        return text.AppendLine().ToString();
    }

    /// <summary>The live view: the status line, the table, and the histograms of the busiest probes.</summary>
    public IRenderable Render(int histograms = 3)
    {
        var table = new Table().Border(TableBorder.Rounded).Expand();
        table.AddColumn("probe");
        foreach (string column in new[] { "calls", "rate/s", "errors", "p50", "p95", "p99", "max" })
            table.AddColumn(new TableColumn(column).RightAligned());
        foreach (Row r in _rows)
        {
            table.AddRow(Markup.Escape(r.Probe), r.Calls.ToString(CultureInfo.InvariantCulture), r.Rate.ToString("F1", CultureInfo.InvariantCulture),
                r.Errors > 0 ? $"[red]{r.Errors}[/]" : "0", Latency(r, 0.5), Latency(r, 0.95), Latency(r, 0.99), Latency(r, 1));
        }
        var parts = new List<IRenderable> { new Markup($"[bold]{Markup.Escape(StatusLine())}[/]"), table };
        foreach (Row r in _rows.Where(r => r.Recorded > 0).Take(histograms))
            parts.Add(new Text(HistogramText(r)));
        parts.Add(new Markup("[grey]q or Ctrl-C to quit[/]"));
        return new Rows(parts);
    }

    private string StatusLine()
    {
        TimeSpan up = DateTime.UtcNow - _started;
        return string.Create(CultureInfo.InvariantCulture,
            $"process {pid} | {up:hh\\:mm\\:ss} | every {interval.TotalSeconds:0.###} s | {_rows.Count} probe(s) hit | {Dropped} dropped | percentiles: log2 buckets, each at most 2x the true value");
    }

    /// <summary>The histogram from the lowest to the highest non-empty bucket, the empty ones between included.</summary>
    private static string HistogramText(Row r)
    {
        var text = new StringBuilder().AppendLine(CultureInfo.InvariantCulture, $"@latency[{r.Probe}] ({r.Recorded} calls):");
        int first = r.Buckets.Min(b => b.Bucket), last = r.Buckets.Max(b => b.Bucket);
        var counts = r.Buckets.ToDictionary(b => b.Bucket, b => b.Count);
        long max = counts.Values.Max();
        for (int bucket = first; bucket <= last; bucket++)
        {
            long count = counts.GetValueOrDefault(bucket);
            text.AppendLine(CultureInfo.InvariantCulture, $"  [{Human(Low(bucket)),8}, {Human(High(bucket)),8}) {count,10} |{new string('@', (int)(count * 40 / max)),-40}|");
        }
        return text.ToString();
    }

    private static string Latency(Row r, double q) => r.Recorded == 0 ? "-" : Human(Percentile(r, q));

    /// <summary>The upper bound of the bucket the q-quantile falls in.</summary>
    private static long Percentile(Row r, double q)
    {
        long target = Math.Max(1, (long)Math.Ceiling(q * r.Recorded));
        long seen = 0;
        foreach (var (bucket, count) in r.Buckets.OrderBy(b => b.Bucket))
        {
            seen += count;
            if (seen >= target)
                return High(bucket);
        }
        return High(r.Buckets.Max(b => b.Bucket));
    }

    private static long Low(int bucket) => Log2Histogram.LowerBound(bucket);

    private static long High(int bucket) => bucket <= 1 ? 1 : bucket >= 64 ? long.MaxValue : Log2Histogram.LowerBound(bucket + 1);

    /// <summary>Nanoseconds in the unit a person reads: 850 ns, 12.3 us, 4.19 ms, 1.07 s.</summary>
    internal static string Human(long ns) => ns switch
    {
        < 1_000 => $"{ns} ns",
        < 1_000_000 => string.Create(CultureInfo.InvariantCulture, $"{ns / 1e3:0.##} us"),
        < 1_000_000_000 => string.Create(CultureInfo.InvariantCulture, $"{ns / 1e6:0.##} ms"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{ns / 1e9:0.##} s"),
    };
}
