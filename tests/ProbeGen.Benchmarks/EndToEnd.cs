using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Diagnostics.Tracing;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;

namespace ProbeGen.Benchmarks;

/// <summary>
/// The end-to-end rows: the real <c>probegen</c> CLI against this program running as a target in
/// <c>--storm</c> mode, which fires one probe (or writes one EventSource event) in a tight loop, or
/// paced to a given rate, and prints its own loop rate twice a second.
/// </summary>
internal static class EndToEnd
{
    private const string ProbeStorm = "probe", EventSourceStorm = "eventsource";

    /// <summary>The paced rates the drop ladder tries, in hits per second.</summary>
    private static readonly long[] Ladder = [250_000, 500_000, 750_000, 1_000_000, 1_250_000, 1_500_000, 2_000_000];

    /// <summary>The target side: fire as fast as possible, or <paramref name="perSecond"/> hits a second, and report the rate on stdout.</summary>
    public static int Storm(string mode, long perSecond)
    {
        Console.WriteLine("ready");
        var clock = Stopwatch.StartNew();
        long count = 0, reported = 0;
        TimeSpan last = TimeSpan.Zero;
        while (true)
        {
            if (perSecond > 0)
            {
                // Paced in steps of 1000 hits, sleeping while ahead: a spinning pacer would take from
                // the CLI the core it measures, on a machine with two.
                while (count / (double)perSecond > clock.Elapsed.TotalSeconds)
                    Thread.Sleep(1);
            }
            if (mode == ProbeStorm)
            {
                for (int i = 0; i < 1000; i++)
                    BenchProbes.FirePlacedEnabled(i, 12.5m, "ada");
            }
            else
            {
                HitPeerEventSource peer = HitPeerEventSource.Log;
                for (int i = 0; i < 1000; i++)
                    if (peer.IsEnabled())
                        peer.WriteHit(i, 0, Environment.CurrentManagedThreadId, Stopwatch.GetTimestamp(), 0);
            }
            count += 1000;
            TimeSpan now = clock.Elapsed;
            if (now - last >= TimeSpan.FromMilliseconds(500))
            {
                Console.WriteLine(FormattableString.Invariant($"rate {(count - reported) / (now - last).TotalSeconds:F0}"));
                reported = count;
                last = now;
            }
        }
    }

    /// <summary>
    /// The EventPipe session both sides of <c>streamed_hit_in_target_cost</c> write to, as
    /// <c>probegen trace</c> opens it: its default 16 MB buffer, no rundown, no stacks.
    /// </summary>
    private static EventPipeSessionConfiguration SessionLikeTheCli(params EventPipeProvider[] providers) =>
        new(providers, circularBufferSizeMB: 16, requestRundown: false, requestStackwalk: false);

    public static List<Row> Measure()
    {
        string cli = Path.Combine(Path.GetDirectoryName(typeof(EndToEnd).Assembly.Location)!, "..", "..", "ProbeGen.Cli",
            new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Name, "probegen.dll");
        var rows = new List<Row>();

        using (Target storm = Target.Start(ProbeStorm))
        {
            // Time from starting `probegen trace` to its first hit on stdout, CLI startup included.
            // The line must be a hit of the probe: a CLI that prints something else, or fails fast, must not pass.
            var firstHits = new List<double>();
            var problems = new List<string>();
            for (int i = 0; i < 3; i++)
            {
                var clock = Stopwatch.StartNew();
                using Process trace = Cli(cli, "trace", "-p", storm.Pid.ToString(), "bench:placed_enabled", "--max-events", "1", "--json");
                string? line = trace.StandardOutput.ReadLine();
                firstHits.Add(clock.Elapsed.TotalNanoseconds);
                trace.WaitForExit(10_000);
                if (!IsHitOf(line, "bench:placed_enabled"))
                    problems.Add(line ?? "(no line)");
            }
            double firstHit = firstHits.Order().ElementAt(1);
            rows.Add(new Row("trace_first_hit", firstHit, problems.Count == 0 ? "first line parsed as a bench:placed_enabled hit" : $"not a hit: {problems[0]}", null, null,
                "<= 1 s from CLI start (median of 3)", firstHit <= 1e9 && problems.Count == 0, 0));

            // In-target cost: everything the unpaced probe fires goes to a --json session meanwhile.
            using (Process streaming = Cli(cli, "trace", "-p", storm.Pid.ToString(), "bench:placed_enabled", "--duration", "4s", "--json"))
            {
                var reading = Task.Run(() => CountLines(streaming));
                Thread.Sleep(1500);
                double inTargetRate = storm.Rate(TimeSpan.FromSeconds(2));
                reading.Wait();
                streaming.WaitForExit();
                rows.Add(new Row("streamed_hit_in_target_cost", 1e9 / inTargetRate, $"raw WriteEventCore, same fields ({HitPeerEventSource.DataBytes} B array), one event per hit", null, null, "<= 1.0x peer", false, 0));
            }
            // The ceiling of TraceEvent's EventPipe parser here: the same session, every hit parsed and counted, nothing printed.
            using var parseOnly = new EventCounter(storm.Pid, ProbeGenTraceProviders("bench:placed_enabled"));
            Thread.Sleep(500);
            double parsed = parseOnly.Rate(TimeSpan.FromSeconds(3));
            rows.Add(new Row("trace_parse_only_hits_per_s", 1e9 / parsed, $"{parsed:F0} hits/s parsed by TraceEvent (unpaced target), nothing printed", null, null, "informational: the parser's ceiling", null, 0));
        }

        // Printing: the target paced at 1M hits/s, then the ladder of paced rates up to where drops begin.
        // A paced target cannot be printed faster than it fires, so the row asks that a target firing
        // 1M/s is printed whole: its 4 s session's lines, per second of session, with nothing dropped.
        Streamed at1M = StreamPaced(cli, 1_000_000);
        double perSessionSecond = at1M.Events / 4.0;
        rows.Add(new Row("trace_streamed_hits_per_s", 1e9 / perSessionSecond,
            $"{perSessionSecond:F0} hits per session second printed from a target paced at 1M/s (fired {at1M.FiredPerSecond:F0}/s); {at1M.PrintedPerSecond:F0}/s from first line to last; {at1M.Lines} lines read, {at1M.Dropped} dropped (counted)", null, null,
            ">= 1M hits/s printed, drops counted", perSessionSecond >= 1_000_000 && at1M.FiredPerSecond >= 990_000 && at1M.Dropped == 0 && at1M.Lines == at1M.Events, 0));
        long clean = 0;
        string firstDrops = "none up to " + Ladder[^1].ToString("N0", System.Globalization.CultureInfo.InvariantCulture) + "/s";
        foreach (long paced in Ladder)
        {
            Streamed run = StreamPaced(cli, paced);
            if (run.Dropped > 0 || run.Lines != run.Events || run.Events == 0)
            {
                firstDrops = $"{run.Dropped} of {run.Dropped + run.Events} dropped at {paced:N0}/s";
                break;
            }
            clean = paced;
        }
        rows.Add(new Row("trace_no_drop_hits_per_s", clean > 0 ? 1e9 / clean : double.NaN,
            $"highest paced rate printed with 0 drops: {clean:N0}/s; {firstDrops}", null, null, "informational: where drops begin", null, 0));

        using (Target storm = Target.Start(EventSourceStorm))
        {
            using var reader = new EventCounter(storm.Pid, [new EventPipeProvider("ProbeGen-Benchmarks-Hits", EventLevel.Informational)]);
            Thread.Sleep(1000);
            double rate = storm.Rate(TimeSpan.FromSeconds(2));
            int at = rows.FindIndex(r => r.Name == "streamed_hit_in_target_cost");
            Row ours = rows[at];
            double ratio = ours.Ns / (1e9 / rate);
            rows[at] = ours with { PeerNs = 1e9 / rate, Ratio = ratio, Meets = ratio <= 1.0 };
        }
        return rows;
    }

    /// <summary>One paced streaming run: what the target fired and what <c>trace --json</c> printed.</summary>
    /// <remarks><c>PrintedPerSecond</c> is the lines over the time from the first line to the last.</remarks>
    private sealed record Streamed(double FiredPerSecond, double PrintedPerSecond, long Events, long Dropped, long Lines);

    /// <summary>
    /// A target paced at <paramref name="perSecond"/>, traced with <c>--json</c> for 4 s. The lines are
    /// counted as bytes on another thread, so that reading them takes as little CPU as it can from
    /// the CLI and the target on this machine's two cores.
    /// </summary>
    private static Streamed StreamPaced(string cli, long perSecond)
    {
        using Target storm = Target.Start(ProbeStorm, perSecond);
        using Process streaming = Cli(cli, "trace", "-p", storm.Pid.ToString(), "bench:placed_enabled", "--duration", "4s", "--json");
        var reading = Task.Run(() => CountLines(streaming));
        Thread.Sleep(1000);
        double fired = storm.Rate(TimeSpan.FromSeconds(2));
        (long lines, string? summary, TimeSpan printing) = reading.Result;
        streaming.WaitForExit();
        using var doc = System.Text.Json.JsonDocument.Parse(summary ?? "{\"summary\":{\"events\":0,\"dropped\":0}}");
        long events = doc.RootElement.GetProperty("summary").GetProperty("events").GetInt64();
        long dropped = doc.RootElement.GetProperty("summary").GetProperty("dropped").GetInt64();
        return new Streamed(fired, lines / Math.Max(printing.TotalSeconds, 1e-3), events, dropped, lines);
    }

    /// <summary>Counts the hit lines a <c>trace --json</c> prints, and returns its summary line and the time from its first line to its last.</summary>
    private static (long Lines, string? Summary, TimeSpan Printing) CountLines(Process trace)
    {
        var clock = new Stopwatch();
        Stream stdout = trace.StandardOutput.BaseStream;
        byte[] buffer = new byte[1 << 16];
        long lines = 0;
        string? summary = null;
        TimeSpan last = TimeSpan.Zero;
        // The bytes of the line that began in an earlier read, up to its third: enough to tell a
        // hit ({"ts") from the summary ({"summary"); the summary itself is kept whole.
        var start = new List<byte>();
        bool inSummary = false;
        for (int read; (read = stdout.Read(buffer, 0, buffer.Length)) > 0;)
        {
            if (!clock.IsRunning)
                clock.Start();
            var chunk = new ReadOnlySpan<byte>(buffer, 0, read);
            while (!chunk.IsEmpty)
            {
                int end = chunk.IndexOf((byte)'\n');
                ReadOnlySpan<byte> piece = end < 0 ? chunk : chunk[..end];
                if (start.Count < 3 || inSummary)
                {
                    foreach (byte b in piece.Length > 512 ? piece[..512] : piece)
                        start.Add(b);
                    inSummary = start.Count >= 3 && start[2] == (byte)'s';
                }
                if (end < 0)
                    break;
                if (inSummary)
                {
                    summary = System.Text.Encoding.UTF8.GetString(start.ToArray());
                }
                else
                {
                    lines++;
                    last = clock.Elapsed;
                }
                start.Clear();
                inSummary = false;
                chunk = chunk[(end + 1)..];
            }
        }
        return (lines, summary, last);
    }

    /// <summary>True when <paramref name="line"/> is a JSON hit of <paramref name="probe"/>.</summary>
    private static bool IsHitOf(string? line, string probe)
    {
        if (line is null)
            return false;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(line);
            System.Text.Json.JsonElement hit = doc.RootElement;
            return hit.TryGetProperty("probe", out var p) && p.GetString() == probe
                && hit.TryGetProperty("point", out var point) && point.GetString() == "fire"
                && hit.TryGetProperty("args", out var args) && args.TryGetProperty("orderId", out _);
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }

    /// <summary>The two providers a <c>probegen trace</c> session enables, for a session opened here instead of by the CLI.</summary>
    private static EventPipeProvider[] ProbeGenTraceProviders(string pattern)
    {
        string id = Guid.NewGuid().ToString("N")[..16];
        var arguments = new Dictionary<string, string>
        {
            [ProbeGen.Control.ControlProtocol.Keys.Session] = id,
            [ProbeGen.Control.ControlProtocol.Keys.Command] = "trace",
            [ProbeGen.Control.ControlProtocol.Keys.Patterns] = ProbeGen.Control.ControlProtocol.Encode(pattern),
        };
        return
        [
            new EventPipeProvider(ProbeGen.Control.ControlProtocol.ProviderName, EventLevel.Informational, 0, arguments),
            new EventPipeProvider(ProbeGen.Control.ControlProtocol.SessionProviderName(id), EventLevel.Verbose, -1),
        ];
    }

    private static Process Cli(string cli, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(cli);
        foreach (string a in arguments)
            start.ArgumentList.Add(a);
        Process process = Process.Start(start)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>This program, started in --storm mode.</summary>
    private sealed class Target : IDisposable
    {
        private readonly Process _process;
        private readonly BlockingQueue _rates = new();

        private Target(Process process)
        {
            _process = process;
            _process.OutputDataReceived += (_, e) =>
            {
                if (e.Data?.StartsWith("rate ", StringComparison.Ordinal) == true)
                    _rates.Add(double.Parse(e.Data[5..], System.Globalization.CultureInfo.InvariantCulture));
            };
            _process.BeginOutputReadLine();
        }

        public int Pid => _process.Id;

        public static Target Start(string mode, long perSecond = 0)
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true };
            start.ArgumentList.Add(typeof(EndToEnd).Assembly.Location);
            start.ArgumentList.Add("--storm");
            start.ArgumentList.Add(mode);
            start.ArgumentList.Add(perSecond.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var target = new Target(Process.Start(start)!);
            var clock = Stopwatch.StartNew();
            while (!File.ReadAllText($"/proc/{target.Pid}/maps").Contains("ProbeGen.Runtime.dll") && clock.Elapsed < TimeSpan.FromSeconds(20))
                Thread.Sleep(50);
            Thread.Sleep(500);
            return target;
        }

        /// <summary>
        /// The median loop rate the target reports over the next <paramref name="window"/>: a half
        /// second that straddles a session's start or end runs mostly untraced, and would dominate a mean.
        /// </summary>
        public double Rate(TimeSpan window)
        {
            _rates.Clear();
            Thread.Sleep(window);
            return _rates.Median();
        }

        public void Dispose()
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
            _process.Dispose();
        }
    }

    private sealed class BlockingQueue
    {
        private readonly List<double> _values = [];

        public void Add(double value)
        {
            lock (_values)
                _values.Add(value);
        }

        public void Clear()
        {
            lock (_values)
                _values.Clear();
        }

        public double Median()
        {
            lock (_values)
                return _values.Count == 0 ? double.NaN : _values.Order().ElementAt(_values.Count / 2);
        }
    }

    /// <summary>
    /// An EventPipe session opened from here, configured like the CLI's, that parses every event with
    /// TraceEvent and counts them: the peer's consumer, and the parse-only ceiling.
    /// </summary>
    private sealed class EventCounter : IDisposable
    {
        private readonly EventPipeSession _session;
        private readonly Task _reader;
        private long _events;

        public EventCounter(int pid, EventPipeProvider[] providers)
        {
            _session = new DiagnosticsClient(pid).StartEventPipeSession(SessionLikeTheCli(providers));
            _reader = Task.Factory.StartNew(() =>
            {
                using var source = new EventPipeEventSource(_session.EventStream);
                // Raw events, as the CLI reads them; a batch counts its hits.
                source.AllEvents += e => Interlocked.Add(ref _events, (int)e.ID == ProbeGen.Control.ControlProtocol.HitBatchEvent && e.EventDataLength >= ProbeGen.Control.HitLayout.BatchRecordsOffset
                    ? System.BitConverter.ToInt32(e.EventData(), ProbeGen.Control.HitLayout.BatchCountOffset)
                    : 1);
                try
                {
                    source.Process();
                }
                catch (Exception ex) when (ex is IOException or FormatException or EndOfStreamException)
                {
                    // The session was stopped mid-block.
                }
            }, TaskCreationOptions.LongRunning);
        }

        /// <summary>Events parsed per second over the next <paramref name="window"/>.</summary>
        public double Rate(TimeSpan window)
        {
            long before = Interlocked.Read(ref _events);
            var clock = Stopwatch.StartNew();
            Thread.Sleep(window);
            return (Interlocked.Read(ref _events) - before) / clock.Elapsed.TotalSeconds;
        }

        public void Dispose()
        {
            try
            {
                _session.Stop();
            }
            catch (Exception)
            {
            }
            _reader.Wait(5000);
            _session.Dispose();
        }
    }
}
