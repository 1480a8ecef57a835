using System;
using System.Collections.Generic;
using System.CommandLine;
using System.IO;
using System.Text.Json;
using System.Threading;
using ProbeGen.Cli.Target;
using ProbeGen.Control;

namespace ProbeGen.Cli.Commands;

/// <summary><c>probegen list</c>: the probes a process has registered, and whether anyone consumes them.</summary>
internal static class ListCommand
{
    public static Command Create()
    {
        Option<int?> pid = CommonOptions.ProcessId();
        Option<bool> json = CommonOptions.Json();
        var command = new Command("list", "List the probes of a process.") { pid, json };
        command.SetAction((result, cancel) => System.Threading.Tasks.Task.FromResult((int)Run(result.GetValue(pid), result.GetValue(json), cancel, Console.Out)));
        return command;
    }

    internal static ExitCode Run(int? pid, bool json, CancellationToken cancel, TextWriter output)
    {
        if (pid is not { } id)
            throw CliException.Usage("list needs -p PID");
        using TargetProcess target = TargetProcess.Attach(id);
        using var run = new SessionRun(target, cancel);
        var probes = new List<TargetEvent>();
        TargetEvent? e = run.Start("list", new Dictionary<string, string>(), duration: null);
        while (e is not null && e.Id != ControlProtocol.ListEndEvent)
        {
            if (e.Id == ControlProtocol.ProbeEvent)
                probes.Add(e);
            e = run.Next();
        }
        if (e is null)
            throw CliException.Failure($"process {target.Pid} stopped answering before the list ended");

        if (json)
        {
            foreach (TargetEvent p in probes)
            {
                output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["probe"] = p["Id"],
                    ["kind"] = p["Kind"],
                    ["params"] = p["Parameters"],
                    ["returns"] = p["ReturnType"] is string { Length: > 0 } r ? r : null,
                    ["file"] = p["File"],
                    ["line"] = p["Line"],
                    ["assembly"] = p["Assembly"],
                    ["consumers"] = p["Consumers"],
                    ["state"] = (int)p.Number("Consumers") > 0 ? "enabled" : "disabled",
                }));
            }
            return ExitCode.Ok;
        }
        output.WriteLine($"{"PROBE",-32} {"KIND",-7} {"STATE",-9} SIGNATURE");
        foreach (TargetEvent p in probes)
        {
            int consumers = (int)p.Number("Consumers");
            string returns = p["ReturnType"] is string { Length: > 0 } r ? " -> " + r : "";
            output.WriteLine($"{p["Id"],-32} {p["Kind"],-7} {(consumers > 0 ? $"on ({consumers})" : "off"),-9} ({p["Parameters"]}){returns}");
        }
        output.WriteLine($"{probes.Count} probe(s) in process {target.Pid}");
        return ExitCode.Ok;
    }
}
