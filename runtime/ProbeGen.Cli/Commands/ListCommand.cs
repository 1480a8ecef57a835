using System;
using System.Collections.Generic;
using System.CommandLine;
using System.IO;
using System.Linq;
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
        Option<string?> name = CommonOptions.Name();
        Option<bool> json = CommonOptions.Json();
        var command = new Command("list", "List the probes of a process.") { pid, name, json };
        command.SetAction((result, cancel) => System.Threading.Tasks.Task.FromResult((int)Run(CommonOptions.ResolveProcess(result.GetValue(pid), result.GetValue(name)), result.GetValue(json), cancel, Console.Out)));
        return command;
    }

    internal static ExitCode Run(int? pid, bool json, CancellationToken cancel, TextWriter output)
    {
        if (pid is not { } id)
            throw CliException.Usage("list needs -p PID or -n NAME");
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
                    ["call_sites"] = p["Kind"] is "method" ? CallSites(p) : null,
                }, CommonOptions.ReadableJson));
            }
            return ExitCode.Ok;
        }
        var coverage = new List<string>();
        int unreachable = 0;
        foreach (TargetEvent p in probes)
        {
            if (p["Kind"] is not "method")
            {
                coverage.Add("-");
                continue;
            }
            Dictionary<string, int> sites = CallSites(p);
            if (sites.Count == 0)
                unreachable++;
            coverage.Add(sites.Count == 0 ? "none yet" : string.Join(", ", sites.Select(s => $"{s.Key} {s.Value}")));
        }
        int idWidth = Math.Max(5, probes.Count == 0 ? 0 : probes.Max(p => p["Id"]?.ToString()?.Length ?? 0));
        int sitesWidth = Math.Max(10, coverage.Count == 0 ? 0 : coverage.Max(c => c.Length));
        output.WriteLine($"{"PROBE".PadRight(idWidth)} {"KIND",-7} {"STATE",-9} {"CALL SITES".PadRight(sitesWidth)} SIGNATURE");
        for (int i = 0; i < probes.Count; i++)
        {
            TargetEvent p = probes[i];
            int consumers = (int)p.Number("Consumers");
            string returns = p["ReturnType"] is string { Length: > 0 } r ? " -> " + r : "";
            output.WriteLine($"{(p["Id"]?.ToString() ?? "").PadRight(idWidth)} {p["Kind"],-7} {(consumers > 0 ? $"on ({consumers})" : "off"),-9} {coverage[i].PadRight(sitesWidth)} ({p["Parameters"]}){returns}");
        }
        output.WriteLine($"{probes.Count} probe(s) in process {target.Pid}");
        if (unreachable > 0)
            output.WriteLine($"{unreachable} method probe(s) have no intercepted call site in the code loaded so far: nothing can fire them yet " +
                "(a framework may call them through reflection or a delegate; see the README's limits)");
        return ExitCode.Ok;
    }

    /// <summary>Intercepted call sites per calling assembly, from the list reply (none from a target that predates the field).</summary>
    private static Dictionary<string, int> CallSites(TargetEvent probe)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (ProbeCallSites c in ControlProtocol.DecodeCallSites(probe["CallSites"] as string))
            result[c.Assembly] = c.Count;
        return result;
    }
}
