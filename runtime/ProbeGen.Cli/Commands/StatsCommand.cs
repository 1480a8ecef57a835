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
using Spectre.Console;

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
        bool live = !json && !Console.IsOutputRedirected && !Console.IsInputRedirected && ReferenceEquals(stdout, Console.Out);
        var view = new StatsView(target.Pid, interval, all);
        long snapshots = 0, dropped = 0;
        void Take(TargetEvent e)
        {
            if (e.Id == ControlProtocol.DroppedEvent)
                view.Dropped = dropped += e.Number("Count");
            if (e.Id != ControlProtocol.StatsEvent)
                return;
            view.Update(e.Text("Json"));
            snapshots++;
            if (!live)
                output.Write(json ? view.JsonLine() + "\n" : view.PlainText());
        }

        if (live)
        {
            // Redrawn in place on the terminal; what is on screen when it stops stays as the final table.
            AnsiConsole.Live(view.Render()).AutoClear(false).Overflow(VerticalOverflow.Ellipsis).Start(context =>
            {
                void QuitOnQ()
                {
                    while (Console.KeyAvailable)
                        if (Console.ReadKey(intercept: true).KeyChar is 'q' or 'Q')
                            run.RequestStop();
                }
                while (run.Next(idle: QuitOnQ) is { } e)
                {
                    Take(e);
                    context.UpdateTarget(view.Render());
                }
                foreach (TargetEvent e in run.StopAndDrain())
                    Take(e);
                context.UpdateTarget(view.Render());
            });
        }
        else
        {
            while (run.Next(idle: output.FlushAndCheck) is { } e)
                Take(e);
            foreach (TargetEvent e in run.StopAndDrain())
                Take(e);
        }
        dropped += run.EventsLost + run.Overflow;
        (string? line, ExitCode code) = run.Outcome(output.Closed);
        if (line is not null)
            Console.Error.WriteLine($"probegen: {line}");
        (output.Closed ? Console.Error : output).WriteLine(json ? $"{{\"summary\":{{\"events\":{snapshots},\"dropped\":{dropped}}}}}" : $"{snapshots} snapshots, {dropped} dropped");
        output.Flush();
        return code;
    }
}
