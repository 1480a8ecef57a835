using System;
using System.Collections.Generic;
using System.CommandLine;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading;
using ProbeGen.Cli.Target;
using ProbeGen.Control;

namespace ProbeGen.Cli.Commands;

/// <summary>
/// <c>probegen stats</c>: counts, rates and log2 latency histograms, aggregated in the target and
/// sent as a snapshot each interval. A live table on a terminal; plain blocks when piped.
/// </summary>
internal static class StatsCommand
{
    public static Command Create(string[] launch)
    {
        Argument<string[]> patterns = CommonOptions.Patterns();
        Option<int?> pid = CommonOptions.ProcessId();
        Option<string?> name = CommonOptions.Name();
        Option<string?> interval = new("--interval") { Description = "Time between snapshots, e.g. 1s.", DefaultValueFactory = _ => "1s" };
        Option<string?> duration = CommonOptions.Duration();
        Option<bool> json = CommonOptions.Json();
        Option<int> buffer = CommonOptions.BufferSize();
        Option<bool> all = new("--all") { Description = "Show every matching probe, also those not hit yet." };
        var command = new Command("stats", "Count calls and histogram latencies of the probes matching PATTERN in a process (-p PID or -n NAME), or in a command it launches: probegen stats PATTERN... -- COMMAND [ARGS...]. Only probes that were hit are shown, unless --all.")
        {
            patterns, pid, name, interval, duration, json, buffer, all,
        };
        command.SetAction((result, cancel) => System.Threading.Tasks.Task.FromResult((int)Run(
            result.GetValue(patterns)!, CommonOptions.ResolveProcess(result.GetValue(pid), result.GetValue(name)),
            CommonOptions.ParseDuration(result.GetValue(interval), "--interval")!.Value,
            CommonOptions.ParseDuration(result.GetValue(duration), "--duration"),
            result.GetValue(json), launch, cancel, Console.Out, CommonOptions.CheckBufferSize(result.GetValue(buffer)), result.GetValue(all))));
        return command;
    }

    internal static ExitCode Run(string[] patterns, int? pid, TimeSpan interval, TimeSpan? duration, bool json, string[] launch, CancellationToken cancel, TextWriter stdout, int bufferMegabytes = CommonOptions.DefaultBufferMegabytes, bool all = false)
    {
        patterns = CommonOptions.DistinctPatterns(patterns);
        if (interval < TimeSpan.FromMilliseconds(50))
            throw CliException.Usage("--interval must be at least 50ms");

        using TargetProcess target = TraceCommand.Connect(pid, launch);
        var arguments = new Dictionary<string, string>
        {
            [ControlProtocol.Keys.Patterns] = ControlProtocol.Encode(string.Join('\n', patterns)),
            [ControlProtocol.Keys.Interval] = ((int)interval.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        using var run = new SessionRun(target, cancel) { BufferMegabytes = bufferMegabytes };
        var output = new GuardedOutput(stdout, run.RequestStop);
        run.Start("stats", arguments, duration);
        bool live = !json && !Console.IsOutputRedirected && ReferenceEquals(stdout, Console.Out);
        var previous = new Dictionary<string, long>(StringComparer.Ordinal);
        long snapshots = 0, dropped = 0;
        string? last = null;
        while (run.Next(idle: output.FlushAndCheck) is { } e)
        {
            if (e.Id == ControlProtocol.DroppedEvent)
                dropped += e.Number("Count");
            if (e.Id != ControlProtocol.StatsEvent)
                continue;
            last = e.Text("Json");
            Print(last, interval, previous, json, live, all, output);
            snapshots++;
        }
        foreach (TargetEvent e in run.StopAndDrain())
        {
            if (e.Id == ControlProtocol.StatsEvent)
            {
                Print(e.Text("Json"), interval, previous, json, live, all, output);
                snapshots++;
            }
        }
        dropped += run.EventsLost + run.Overflow;
        (string? line, ExitCode code) = run.Outcome(output.Closed);
        if (line is not null)
            Console.Error.WriteLine($"probegen: {line}");
        (output.Closed ? Console.Error : output).WriteLine(json ? $"{{\"summary\":{{\"events\":{snapshots},\"dropped\":{dropped}}}}}" : $"{snapshots} snapshots, {dropped} dropped");
        output.Flush();
        return code;
    }

    private static void Print(string snapshot, TimeSpan interval, Dictionary<string, long> previous, bool json, bool live, bool all, TextWriter output)
    {
        using JsonDocument doc = JsonDocument.Parse(snapshot);
        // Rates over the time the target says passed since its previous snapshot.
        if (doc.RootElement.TryGetProperty("elapsed_ms", out JsonElement elapsed) && elapsed.GetDouble() > 0)
            interval = TimeSpan.FromMilliseconds(elapsed.GetDouble());
        var rows = doc.RootElement.GetProperty("probes").EnumerateArray().Select(p => (
            Probe: p.GetProperty("probe").GetString()!,
            Count: p.GetProperty("count").GetInt64(),
            Buckets: p.GetProperty("latency_ns").EnumerateArray().Select(b => (Bucket: b[0].GetInt32(), Count: b[1].GetInt64())).ToArray()))
            .Where(r => all || r.Count > 0)  // 588 probes of a library, most never hit, would bury the few that are
            .ToList();
        if (json)
        {
            var line = new StringBuilder("{\"ts\":").Append(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000).Append(",\"probes\":[");
            for (int i = 0; i < rows.Count; i++)
            {
                var r = rows[i];
                double rate = (r.Count - previous.GetValueOrDefault(r.Probe)) / interval.TotalSeconds;
                line.Append(i > 0 ? "," : "").Append("{\"probe\":").Append(JsonSerializer.Serialize(r.Probe, CommonOptions.ReadableJson))
                    .Append(",\"count\":").Append(r.Count).Append(",\"rate\":").Append(rate.ToString("F1", System.Globalization.CultureInfo.InvariantCulture))
                    .Append(",\"latency_ns\":[").Append(string.Join(",", r.Buckets.Select(b => $"[{Low(b.Bucket)},{High(b.Bucket)},{b.Count}]"))).Append("]}");
                previous[r.Probe] = r.Count;
            }
            output.WriteLine(line.Append("]}").ToString());
            return;
        }
        var text = new StringBuilder();
        if (live)
            text.Append("\u001b[H\u001b[2J");  // refresh in place: home the cursor and clear the screen
        int width = Math.Max(32, rows.Count == 0 ? 0 : rows.Max(r => r.Probe.Length));
        text.AppendLine($"{"PROBE".PadRight(width)} {"CALLS",10} {"RATE/s",10}");
        foreach (var r in rows)
        {
            double rate = (r.Count - previous.GetValueOrDefault(r.Probe)) / interval.TotalSeconds;
            previous[r.Probe] = r.Count;
            text.AppendLine(System.FormattableString.Invariant($"{r.Probe.PadRight(width)} {r.Count,10} {rate,10:F1}"));
            if (r.Buckets.Length > 0)
            {
                long max = r.Buckets.Max(b => b.Count);
                foreach (var (bucket, count) in r.Buckets)
                    text.AppendLine($"    {Label(bucket),-18} {count,8} |{new string('@', (int)(count * 30 / max)),-30}|");
            }
        }
        if (!live)
            text.AppendLine();
        output.Write(text.ToString());
    }

    private static long Low(int bucket) => Log2Histogram.LowerBound(bucket);

    private static long High(int bucket) => bucket <= 1 ? 1 : bucket >= 64 ? long.MaxValue : Log2Histogram.LowerBound(bucket + 1);

    private static string Label(int bucket) => bucket switch
    {
        0 => "(<0)",
        1 => "[0]",
        _ => $"[{Human(Low(bucket))}, {Human(High(bucket))}) ns",
    };

    private static string Human(long value) => value switch
    {
        >= 1L << 30 when value % (1L << 30) == 0 => $"{value >> 30}G",
        >= 1L << 20 when value % (1L << 20) == 0 => $"{value >> 20}M",
        >= 1L << 10 when value % (1L << 10) == 0 => $"{value >> 10}K",
        _ => value.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
