using System;
using System.Collections.Concurrent;
using System.CommandLine;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading;
using ProbeGen.Uprobes;

using ProbeGen.Cli.Target;

namespace ProbeGen.Cli.Commands;

/// <summary><c>probegen uprobe</c>: real int3 uprobes on an unmanaged ELF binary, through the kernel's uprobe PMU or ptrace.</summary>
internal static class UprobeCommand
{
    public static Command Create(string[] launch)
    {
        Argument<string[]> specs = new("SPEC")
        {
            Description = "BINARY:SYMBOL[(TYPES)], BINARY:SYMBOL%return[(TYPE)] or BINARY:0xOFFSET[(TYPES)]; TYPES from i8 i16 i32 i64 u8 u16 u32 u64 ptr str.",
            Arity = ArgumentArity.OneOrMore,
        };
        Option<int?> pid = CommonOptions.ProcessId();
        Option<string> backend = new("--backend")
        {
            Description = "perf (the kernel's uprobe PMU), ptrace, jump (a jump to a trampoline, no trap per hit; entry probes on named functions), or auto: perf wherever perf_event_open allows it, else ptrace.",
            DefaultValueFactory = _ => "auto",
        };
        backend.CompletionSources.Add("auto", "perf", "ptrace", "jump");
        Option<bool> all = new("--all-processes", "-a") { Description = "Every process that runs the probed code, system-wide, until Ctrl-C or --duration (perf only)." };
        Option<bool> json = CommonOptions.Json();
        Option<string?> duration = CommonOptions.Duration();
        var command = new Command("uprobe", "Trace functions of an unmanaged ELF binary with uprobes: attach with -p PID, trace every process with -a, or launch with -- COMMAND [ARGS...].") { specs, pid, all, backend, json, duration };
        command.SetAction((result, cancel) => System.Threading.Tasks.Task.FromResult((int)Run(
            result.GetValue(specs)!, result.GetValue(pid), result.GetValue(all), result.GetValue(backend)!, result.GetValue(json),
            CommonOptions.ParseDuration(result.GetValue(duration), "--duration"), launch, cancel)));
        return command;
    }

    private static ExitCode Run(string[] specTexts, int? pid, bool all, string backend, bool json, TimeSpan? duration, string[] launch, CancellationToken cancel)
    {
        UprobeSpec[] specs;
        try
        {
            specs = specTexts.Select(UprobeSpec.Parse).ToArray();
        }
        catch (FormatException ex)
        {
            throw CliException.Usage(ex.Message);
        }
        if (backend is not ("auto" or "perf" or "ptrace" or "jump"))
            throw CliException.Usage($"--backend must be auto, perf, ptrace or jump, not '{backend}'");
        if ((pid is not null ? 1 : 0) + (launch.Length > 0 ? 1 : 0) + (all ? 1 : 0) > 1)
            throw CliException.Usage("give one of -p PID, -a, or -- COMMAND");
        if (pid is null && launch.Length == 0 && !all)
            throw CliException.Usage("give -p PID to trace a running process, -a to trace every process, or -- COMMAND to launch one");
        if (all && backend is "ptrace" or "jump")
            throw CliException.Usage($"-a needs the perf backend: {backend} traces one process");
        if (pid is { } id && !Directory.Exists($"/proc/{id}"))
            throw CliException.Usage($"no such process: {id}");

        var hits = new BlockingCollection<UprobeHit>(boundedCapacity: 1_000_000);
        long overflow = 0;
        void Enqueue(UprobeHit hit)
        {
            if (!hits.TryAdd(hit))
                Interlocked.Increment(ref overflow);
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var output = new GuardedOutput(GuardedOutput.StandardOutput(), stop.Cancel);
        if (duration is { } d)
            stop.CancelAfter(d);
        IUprobeSession session;
        bool endedByItself = false;
        try
        {
            UprobeBackend chosen = backend switch { "perf" => UprobeBackend.Perf, "ptrace" => UprobeBackend.Ptrace, "jump" => UprobeBackend.Jump, _ => UprobeBackend.Auto };
            void FallBack(string why) => Console.Error.WriteLine($"probegen: {why}");
            // A launched program's output goes to our stderr: stdout carries the hits.
            session = launch.Length > 0
                ? UprobeSessions.Launch(chosen, specs, launch, Enqueue, standardOutput: 2, FallBack)
                : UprobeSessions.Start(chosen, specs, all ? null : pid, Enqueue, FallBack);
            IUprobeSession started = session;
            if (started.LeftoversRemoved > 0)
                Console.Error.WriteLine($"probegen: removed {started.LeftoversRemoved} probe(s) left in process {pid} by an earlier probegen uprobe that was killed");
            if (started.Backend is UprobeBackend.Ptrace or UprobeBackend.Jump)
            {
                WhenDone(() =>
                {
                    started.WaitForEnd(Timeout.InfiniteTimeSpan);
                    endedByItself = !stop.IsCancellationRequested;
                }, stop);
            }
            else if (launch.Length > 0)
                WhenDone(() => started.WaitForEnd(Timeout.InfiniteTimeSpan), stop);
            else if (pid is not null)
                WhenDone(() => { while (Directory.Exists($"/proc/{pid}")) Thread.Sleep(100); }, stop);
        }
        catch (UprobeException ex)
        {
            throw CliException.Usage(ex.Message);  // every uprobe error is one the user fixes: the issue asks for exit code 2, permissions included
        }

        long events = 0;
        void Print(UprobeHit hit)
        {
            events++;
            output.WriteLine(Format(hit, json));
        }

        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (hits.TryTake(out UprobeHit? hit, 50))
                    Print(hit);
                else
                    output.FlushAndCheck();
            }
        }
        finally
        {
            session.Dispose();  // detaches (ptrace: restores every byte); a launched program still running is killed
            while (hits.TryTake(out UprobeHit? hit))
                Print(hit);
            long dropped = session.Dropped + Interlocked.Read(ref overflow);
            if (output.Closed)
                Console.Error.WriteLine("probegen: stdout was closed; stopped");
            // The summary goes where the hits went; when that reader has gone, to stderr.
            (output.Closed ? Console.Error : output).WriteLine(json ? $"{{\"summary\":{{\"events\":{events},\"dropped\":{dropped}}}}}" : $"{events} events, {dropped} dropped");
            output.Flush();
            // Hits the CLI's own consumer failed to take (it only queues them): said once, on stderr.
            if (session.FaultCount > 0)
                Console.Error.WriteLine($"probegen: {session.FaultCount} hits could not be delivered: {session.LastFault?.Message}");
        }
        if (session.Failure is UprobeException failure)
            throw CliException.Usage(failure.Message);
        if (!session.Planted && launch.Length > 0 && endedByItself)
            throw CliException.Usage($"the launched program never mapped {string.Join(", ", specs.Select(s => s.Binary).Distinct())}: nothing was probed");
        return ExitCode.Ok;
    }

    /// <summary>Ends the trace when <paramref name="wait"/> returns.</summary>
    private static void WhenDone(Action wait, CancellationTokenSource stop) =>
        new Thread(() =>
        {
            wait();
            stop.Cancel();
        }) { IsBackground = true, Name = "uprobe target watch" }.Start();

    /// <summary>One hit as a JSON line (DESIGN.md's native format) or as a readable line.</summary>
    private static string Format(UprobeHit hit, bool json)
    {
        string probe = Path.GetFullPath(hit.Spec.Binary) + ":" + (hit.Spec.Symbol ?? $"0x{hit.Spec.Offset:x}");
        if (json)
        {
            var line = new StringBuilder();
            line.Append("{\"ts\":").Append(hit.TimestampNs).Append(",\"pid\":").Append(hit.Pid).Append(",\"tid\":").Append(hit.Tid)
                .Append(",\"probe\":").Append(JsonSerializer.Serialize(probe, CommonOptions.ReadableJson))
                .Append(",\"point\":\"").Append(hit.Spec.Return ? "return" : "entry").Append('"');
            if (hit.Spec.Return)
                line.Append(",\"ret\":").Append(hit.Values.Length > 0 ? Json(hit.Values[0]) : "null");
            else
                line.Append(",\"args\":[").Append(string.Join(",", hit.Values.Select(Json))).Append(']');
            return line.Append('}').ToString();
        }
        string values = string.Join(", ", hit.Values.Select(v => v is string s ? $"\"{s}\"" : v?.ToString() ?? "NULL"));
        string time = DateTimeOffset.FromUnixTimeMilliseconds(hit.TimestampNs / 1_000_000).ToLocalTime().ToString("HH:mm:ss.fff");
        return hit.Spec.Return ? $"{time} [{hit.Tid}] {probe} return {values}" : $"{time} [{hit.Tid}] {probe}({values})";
    }

    private static string Json(object? value) => value switch
    {
        null => "null",
        string s => JsonSerializer.Serialize(s, CommonOptions.ReadableJson),
        long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ulong u => u.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => JsonSerializer.Serialize(value.ToString(), CommonOptions.ReadableJson),
    };
}
