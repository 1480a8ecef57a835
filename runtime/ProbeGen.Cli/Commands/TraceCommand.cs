using System;
using System.Collections.Generic;
using System.CommandLine;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Threading;
using ProbeGen.Cli.Target;
using ProbeGen.Control;

namespace ProbeGen.Cli.Commands;

/// <summary><c>probegen trace</c>: streams probe hits, filtered in the target, until told to stop.</summary>
internal static class TraceCommand
{
    public static Command Create(string[] launch)
    {
        Argument<string[]> patterns = CommonOptions.Patterns();
        Option<int?> pid = CommonOptions.ProcessId();
        Option<string?> name = CommonOptions.Name();
        Option<string?> where = new("--where") { Description = "Only hits for which this holds, evaluated in the target: amount > 100 && customer == \"ada\"." };
        Option<string?> duration = CommonOptions.Duration();
        Option<long?> maxEvents = new("--max-events") { Description = "Stop after this many hits." };
        Option<long> rate = new("--rate") { Description = "The most hits per second per probe the target sends; the rest count as dropped. 0 for no limit.", DefaultValueFactory = _ => 0 };
        Option<bool> json = CommonOptions.Json();
        Option<int> buffer = CommonOptions.BufferSize();
        Option<string?> save = new("--output", "-o") { Description = "Also save the trace to FILE, in the --format given or named by its extension (.nettrace, .json, .speedscope.json, .chromium.json)." };
        Option<string?> format = new("--format") { Description = "The -o file's format: nettrace (PerfView, dotnet-trace convert), json (one hit per line), speedscope, or chromium (chrome://tracing, Perfetto)." };
        format.CompletionSources.Add("nettrace", "json", "speedscope", "chromium");
        var command = new Command("trace", "Stream the hits of the probes matching PATTERN from a process (-p PID or -n NAME), or from a command it launches and traces from its first instruction: probegen trace PATTERN... -- COMMAND [ARGS...].")
        {
            patterns, pid, name, where, duration, maxEvents, rate, json, buffer, save, format,
        };
        command.SetAction((result, cancel) => System.Threading.Tasks.Task.FromResult((int)Run(new Options(
            result.GetValue(patterns)!, CommonOptions.ResolveProcess(result.GetValue(pid), result.GetValue(name)), result.GetValue(where),
            CommonOptions.ParseDuration(result.GetValue(duration), "--duration"), result.GetValue(maxEvents),
            result.GetValue(rate), result.GetValue(json), launch, CommonOptions.CheckBufferSize(result.GetValue(buffer)), result.GetValue(save), result.GetValue(format)), cancel, GuardedOutput.StandardOutput())));
        return command;
    }

    internal sealed record Options(string[] Patterns, int? Pid, string? Where, TimeSpan? Duration, long? MaxEvents, long Rate, bool Json, string[] Launch, int BufferMegabytes = CommonOptions.DefaultBufferMegabytes, string? Output = null, string? Format = null);

    internal static ExitCode Run(Options options, CancellationToken cancel, TextWriter stdout)
    {
        string[] patterns = CommonOptions.DistinctPatterns(options.Patterns);
        if (options.Where is not null && !WhereFilter.TryParse(options.Where, out _, out string? whereError))
            throw CliException.Usage(whereError!);
        if (options.MaxEvents is <= 0)
            throw CliException.Usage("--max-events must be at least 1");
        if (options.Rate < 0)
            throw CliException.Usage("--rate must be 0 (no limit) or more");

        if (options.Format is not null && options.Output is null)
            throw CliException.Usage("--format needs -o FILE");
        TraceFiles.TraceFileFormat fileFormat = options.Output is null ? default : TraceFiles.TraceFileFormats.Resolve(options.Format, options.Output);
        System.IO.FileStream? file = options.Output is null ? null : CreateOutput(options.Output);
        System.IO.FileStream? saveTo = fileFormat == TraceFiles.TraceFileFormat.Nettrace ? file : null;
        var recorded = new List<TraceFiles.RecordedHit>();
        using TargetProcess target = Connect(options.Pid, options.Launch);
        var arguments = new Dictionary<string, string>
        {
            [ControlProtocol.Keys.Patterns] = ControlProtocol.Encode(string.Join('\n', patterns)),
            [ControlProtocol.Keys.Rate] = options.Rate.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (options.Where is not null)
            arguments[ControlProtocol.Keys.Where] = ControlProtocol.Encode(options.Where);
        // A saved .nettrace keeps an event per hit, each with the stack it was written on.
        if (saveTo is not null)
            arguments[ControlProtocol.Keys.Batch] = "0";

        using var run = new SessionRun(target, cancel) { BufferMegabytes = options.BufferMegabytes, SaveTo = saveTo };
        var output = new GuardedOutput(stdout, run.RequestStop);
        var printer = new HitPrinter(output, options.Json, target.Pid);
        var stream = new TraceStream(printer, output, options.MaxEvents, file is not null && saveTo is null ? recorded : null, run.RequestStop, target.Pid);
        // Hits never reach this thread: the stream prints them on the reader thread as they arrive.
        TargetEvent ready = run.Start("trace", arguments, options.Duration, stream.Take);
        if (ready["Message"] is string { Length: > 0 } note)
            Console.Error.WriteLine($"probegen: {note}");
        if (!options.Json)
            Console.Error.WriteLine($"probegen: tracing {ready["Probes"]} probe(s) in process {target.Pid}; Ctrl-C to stop");

        long dropped = 0;
        void Handle(TargetEvent e)
        {
            switch (e.Id)
            {
                case ControlProtocol.DroppedEvent:
                    dropped += e.Number("Count");
                    break;
                case ControlProtocol.ErrorEvent:
                    Console.Error.WriteLine($"probegen: process {target.Pid}: {e["Message"]}");
                    break;
            }
        }
        while (run.Next(idle: stream.Idle) is { } e)
            Handle(e);
        // Hits already in flight when we stopped are printed by the stream, up to --max-events; those
        // still in the target's batches are written out first, unless --max-events has all it wants.
        bool flush = options.MaxEvents is not { } max || stream.Events < max;
        foreach (TargetEvent e in run.StopAndDrain(flush))
        {
            if (e.Id == ControlProtocol.DroppedEvent)
                dropped += e.Number("Count");
        }
        stream.Close();
        long events = stream.Events;
        // Each gap in a batch's numbers is exact; lost events no gap explains (a thread's last batch,
        // a heartbeat) count as one hit each, so a loss is never silent.
        dropped += stream.LostHits + Math.Max(0, run.EventsLost - stream.Gaps) + run.Overflow + stream.Malformed;
        if (file is not null && saveTo is null)
            WriteFile(file, fileFormat, target.Pid, recorded);
        (string? line, ExitCode code) = run.Outcome(output.Closed);
        if (line is not null)
            Console.Error.WriteLine($"probegen: {line}");
        // The summary goes where the hits went; when that reader has gone, to stderr.
        printer.Summary(events, dropped, output.Closed ? Console.Error : output);
        output.Flush();
        return code;
    }

    /// <summary>Writes the hits a run printed to the -o file, in a format other than nettrace (which the session writes as it streams).</summary>
    private static void WriteFile(System.IO.FileStream file, TraceFiles.TraceFileFormat format, int pid, List<TraceFiles.RecordedHit> hits)
    {
        using (file)
        {
            switch (format)
            {
                case TraceFiles.TraceFileFormat.Speedscope:
                    TraceFiles.SpeedscopeWriter.Write(file, hits);
                    break;
                case TraceFiles.TraceFileFormat.Chromium:
                    TraceFiles.ChromiumTraceWriter.Write(file, pid, hits);
                    break;
                default:
                    using (var writer = new System.IO.StreamWriter(file, new UTF8Encoding(false)))
                    {
                        var lines = new HitPrinter(writer, json: true, pid);
                        foreach (TraceFiles.RecordedHit hit in hits)
                            lines.Print(hit);
                        lines.Flush();
                    }
                    break;
            }
        }
    }

    /// <summary>Creates the --output file up front, so that a bad path is a usage error before anything is attached.</summary>
    private static System.IO.FileStream CreateOutput(string path)
    {
        try
        {
            return new System.IO.FileStream(path, System.IO.FileMode.Create, System.IO.FileAccess.Write, System.IO.FileShare.Read, 1 << 16);
        }
        catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw CliException.Usage($"--output: cannot write '{path}': {ex.Message}");
        }
    }

    internal static TargetProcess Connect(int? pid, string[] launch)
    {
        if (pid is { } p && launch.Length > 0)
            throw CliException.Usage("give either -p PID or -- COMMAND, not both");
        if (pid is { } id)
            return TargetProcess.Attach(id);
        if (launch.Length > 0)
            return TargetProcess.Launch(launch);
        throw CliException.Usage("give -p PID to attach to a process, or -- COMMAND to launch one");
    }
}
