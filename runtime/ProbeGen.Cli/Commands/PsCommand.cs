using System;
using System.CommandLine;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.Diagnostics.NETCore.Client;

namespace ProbeGen.Cli.Commands;

/// <summary><c>probegen ps</c>: the .NET processes this user can attach to, and which have ProbeGen loaded.</summary>
internal static class PsCommand
{
    public static Command Create()
    {
        Option<bool> json = CommonOptions.Json();
        var command = new Command("ps", "List the .NET processes that can be traced.") { json };
        command.SetAction(result => (int)Run(result.GetValue(json), Console.Out));
        return command;
    }

    internal static ExitCode Run(bool json, TextWriter output)
    {
        var processes = DiagnosticsClient.GetPublishedProcesses()
            .Where(pid => pid != Environment.ProcessId && Target.TargetProcess.IsProcess(pid))
            .Order()
            .Select(pid => (Pid: pid, Name: Read($"/proc/{pid}/comm")?.Trim() ?? "?", Command: CommandLine(pid), ProbeGen: HasProbeGen(pid), Reachable: Target.TargetProcess.CanReach(pid)))
            .ToList();
        const string denied = "permission denied: runs as another user";
        if (json)
        {
            foreach (var p in processes)
                output.WriteLine(JsonSerializer.Serialize(new { pid = p.Pid, name = p.Name, probegen = p.ProbeGen, command = p.Command, note = p.Reachable ? null : denied }, CommonOptions.ReadableJson));
            return ExitCode.Ok;
        }
        output.WriteLine($"{"PID",7} {"PROBEGEN",-8} {"NAME",-16} COMMAND");
        foreach (var p in processes)
            output.WriteLine($"{p.Pid,7} {(p.ProbeGen switch { true => "yes", false => "-", null => "?" }),-8} {p.Name,-16} {(p.Reachable ? p.Command : $"({denied}) {p.Command}")}");
        return ExitCode.Ok;
    }

    /// <summary>ProbeGen is loaded when its runtime assembly is mapped into the process; null when its memory map cannot be read (another user's process).</summary>
    private static bool? HasProbeGen(int pid) =>
        Read($"/proc/{pid}/maps")?.Contains("ProbeGen.Runtime.dll", StringComparison.Ordinal);

    private static string CommandLine(int pid) => Read($"/proc/{pid}/cmdline")?.Replace('\0', ' ').Trim() ?? "";

    private static string? Read(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
