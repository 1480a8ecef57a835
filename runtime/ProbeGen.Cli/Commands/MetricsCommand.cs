using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Threading;
using ProbeGen.Cli.Target;
using ProbeGen.Control;

namespace ProbeGen.Cli.Commands;

/// <summary>
/// <c>probegen metrics</c>: asks a running process to publish the matching probes as instruments of
/// its <c>ProbeGen</c> meter (calls, errors, duration), for as long as this command runs, so that
/// <c>dotnet-counters</c>, an OpenTelemetry MeterProvider or any MeterListener in or out of the
/// process sees them. No restart, no code change.
/// </summary>
internal static class MetricsCommand
{
    public static Command Create(string[] launch)
    {
        Argument<string[]> patterns = CommonOptions.Patterns();
        Option<int?> pid = CommonOptions.ProcessId();
        Option<string?> name = CommonOptions.Name();
        Option<string[]> tags = new("--tag") { Description = "An argument to add as a tag (low-cardinality ones only); repeatable.", AllowMultipleArgumentsPerToken = false };
        Option<string?> duration = CommonOptions.Duration();
        var command = new Command("metrics", "Publish the probes matching PATTERN as instruments of the ProbeGen meter of a process (-p PID or -n NAME, or -- COMMAND [ARGS...] to launch one), while this runs: dotnet-counters monitor -p PID --counters ProbeGen shows them.")
        {
            patterns, pid, name, tags, duration,
        };
        command.SetAction((result, cancel) => System.Threading.Tasks.Task.FromResult((int)Run(
            result.GetValue(patterns)!, CommonOptions.ResolveProcess(result.GetValue(pid), result.GetValue(name)), result.GetValue(tags) ?? [],
            CommonOptions.ParseDuration(result.GetValue(duration), "--duration"), launch, cancel)));
        return command;
    }

    internal static ExitCode Run(string[] patterns, int? pid, string[] tags, TimeSpan? duration, string[] launch, CancellationToken cancel)
    {
        patterns = CommonOptions.DistinctPatterns(patterns);
        foreach (string tag in tags)
            if (tag.Length is 0 or > 128 || !Array.TrueForAll(tag.ToCharArray(), c => char.IsAsciiLetterOrDigit(c) || c == '_'))
                throw CliException.Usage($"--tag: '{tag}' is not an argument name");
        using TargetProcess target = TraceCommand.Connect(pid, launch);
        var arguments = new Dictionary<string, string>
        {
            [ControlProtocol.Keys.Patterns] = ControlProtocol.Encode(string.Join('\n', patterns)),
            [ControlProtocol.Keys.Tags] = string.Join(',', tags),
        };
        using var run = new SessionRun(target, cancel) { BufferMegabytes = 1 };
        TargetEvent ready = run.Start("metrics", arguments, duration);
        if (ready["Message"] is string { Length: > 0 } note)
            Console.Error.WriteLine($"probegen: {note}");
        Console.Error.WriteLine($"probegen: publishing {ready["Probes"]} probe(s) of process {target.Pid} on the meter '{ProbeMeter.Name}'; watch with: dotnet-counters monitor -p {target.Pid} --counters {ProbeMeter.Name}; Ctrl-C to stop");
        while (run.Next() is not null)
        {
        }
        foreach (TargetEvent _ in run.StopAndDrain())
        {
        }
        (string? line, ExitCode code) = run.Outcome(outputClosed: false);
        if (line is not null)
            Console.Error.WriteLine($"probegen: {line}");
        return code;
    }
}
