using System;
using System.CommandLine;
using System.IO;
using System.Linq;
using System.Text.Json;

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
        var processes = Target.TargetProcess.PublishedRuntimes()
            .Order()
            .Select(pid => (Pid: pid, Name: Read($"/proc/{pid}/comm")?.Trim() ?? "?", Command: CommandLine(pid), Runtime: Inspect(pid), Reachable: Target.TargetProcess.CanReach(pid)))
            .ToList();
        const string denied = "permission denied: runs as another user";
        if (json)
        {
            foreach (var p in processes)
                output.WriteLine(JsonSerializer.Serialize(new { pid = p.Pid, name = p.Name, probegen = p.Runtime.ProbeGen, runtime = p.Runtime.Kind, command = p.Command, note = p.Reachable ? null : denied }, CommonOptions.ReadableJson));
            return ExitCode.Ok;
        }
        output.WriteLine($"{"PID",7} {"PROBEGEN",-8} {"RUNTIME",-9} {"NAME",-16} COMMAND");
        foreach (var p in processes)
            output.WriteLine($"{p.Pid,7} {(p.Runtime.ProbeGen switch { true => "yes", false => "-", null => "?" }),-8} {p.Runtime.Kind ?? "?",-9} {p.Name,-16} {(p.Reachable ? p.Command : $"({denied}) {p.Command}")}");
        return ExitCode.Ok;
    }

    /// <summary>
    /// Which runtime the process runs on, and whether ProbeGen is in it; nulls when its memory map
    /// cannot be read (another user's process). A JIT app maps ProbeGen.Runtime.dll. A NativeAOT
    /// app maps no coreclr and has ProbeGen compiled into its executable, which keeps the
    /// assembly's name for its stack traces and reflection data.
    /// </summary>
    private static (string? Kind, bool? ProbeGen) Inspect(int pid)
    {
        if (Read($"/proc/{pid}/maps") is not { } maps)
            return (null, null);
        if (maps.Contains("/libcoreclr.so", StringComparison.Ordinal))
            return ("coreclr", maps.Contains("/ProbeGen.Runtime.dll", StringComparison.Ordinal));
        return ("nativeaot", ExecutableContains(pid, "ProbeGen.Runtime"u8));
    }

    /// <summary>Searches the process's executable in bounded chunks, up to 2 GiB; null when it cannot be read.</summary>
    private static bool? ExecutableContains(int pid, ReadOnlySpan<byte> marker)
    {
        try
        {
            using var file = new FileStream($"/proc/{pid}/exe", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1);
            byte[] buffer = new byte[1 << 20];
            int kept = 0;
            long read = 0;
            while (read < (2L << 30))
            {
                int n = file.Read(buffer, kept, buffer.Length - kept);
                if (n == 0)
                    return false;
                read += n;
                int filled = kept + n;
                if (buffer.AsSpan(0, filled).IndexOf(marker) >= 0)
                    return true;
                // Keep the tail, so a marker across two chunks is still found.
                kept = Math.Min(marker.Length - 1, filled);
                buffer.AsSpan(filled - kept, kept).CopyTo(buffer);
            }
            return false;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

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
