using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using Microsoft.Diagnostics.NETCore.Client;

namespace ProbeGen.Cli.Target;

/// <summary>A .NET process to talk to: one that runs already (<c>-p PID</c>), or one we launch suspended (<c>-- COMMAND</c>).</summary>
internal sealed class TargetProcess : IDisposable
{
    private TargetProcess(int pid, DiagnosticsClient client, Process? child)
    {
        Pid = pid;
        Client = client;
        Child = child;
    }

    public int Pid { get; }

    public DiagnosticsClient Client { get; }

    /// <summary>The launched child, in launch mode.</summary>
    public Process? Child { get; }

    /// <summary>Attaches to a running process.</summary>
    public static TargetProcess Attach(int pid)
    {
        try
        {
            using Process process = Process.GetProcessById(pid);
            if (process.HasExited)
                throw CliException.Usage($"no such process: {pid}");
        }
        catch (ArgumentException)
        {
            throw CliException.Usage($"no such process: {pid}");
        }
        if (!IsProcess(pid))
            throw CliException.Usage($"no such process: {pid}");
        if (!CanReach(pid))
            throw CliException.Failure(PermissionDenied(pid));
        if (!HasLiveDiagnosticsPort(pid))
            throw CliException.Failure($"process {pid} is not a .NET process with a diagnostics port");
        return new TargetProcess(pid, new DiagnosticsClient(pid), null);
    }

    /// <summary>
    /// True when <paramref name="pid"/> is a process, not one of a process's threads: /proc answers
    /// for thread ids too, and a diagnostics socket left by a dead process can carry a number that
    /// is now a thread of another.
    /// </summary>
    public static bool IsProcess(int pid)
    {
        try
        {
            foreach (string line in System.IO.File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("Tgid:", StringComparison.Ordinal))
                    return int.TryParse(line.AsSpan(5).Trim(), out int tgid) && tgid == pid;
        }
        catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException)
        {
        }
        return false;
    }

    /// <summary>
    /// The processes whose .NET runtime listens on a diagnostics port now, this process excluded.
    /// A runtime names its socket <c>dotnet-diagnostic-{pid}-{start time}-socket</c>; a socket left
    /// by a dead process keeps its number, which may since belong to any other process (a kernel
    /// worker was seen in <c>ps</c>), so the start time must be the process's own.
    /// </summary>
    public static IEnumerable<int> PublishedRuntimes() =>
        DiagnosticsClient.GetPublishedProcesses().Distinct().Where(pid => pid != Environment.ProcessId && HasLiveDiagnosticsPort(pid));

    /// <summary>True when <paramref name="pid"/> is a process and a diagnostics socket carries its start time.</summary>
    public static bool HasLiveDiagnosticsPort(int pid)
    {
        if (!IsProcess(pid) || StartTime(pid) is not { } start)
            return false;
        string prefix = $"dotnet-diagnostic-{pid}-";
        try
        {
            foreach (string socket in System.IO.Directory.EnumerateFiles(System.IO.Path.GetTempPath(), prefix + "*-socket"))
            {
                ReadOnlySpan<char> name = System.IO.Path.GetFileName(socket.AsSpan());
                if (name[prefix.Length..^"-socket".Length].SequenceEqual(start))
                    return true;
            }
        }
        catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException)
        {
        }
        return false;
    }

    /// <summary>The process's start time in clock ticks since boot (field 22 of its stat), as text.</summary>
    private static string? StartTime(int pid)
    {
        try
        {
            string stat = System.IO.File.ReadAllText($"/proc/{pid}/stat");
            // The command name, field 2, is in parentheses and may hold spaces or parentheses itself.
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields.Length > 19 ? fields[19] : null;
        }
        catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>The one line for a process this user may not attach to.</summary>
    public static string PermissionDenied(int pid) => $"permission denied: process {pid} runs as another user; run as the process's user or root";

    /// <summary>
    /// False when the process belongs to another user and we are not root: its diagnostics socket
    /// would refuse us, and the runtime's error for that reads like the process is gone.
    /// </summary>
    public static bool CanReach(int pid)
    {
        uint me = geteuid();
        return me == 0 || OwnerOf(pid) is not { } owner || owner == me;
    }

    /// <summary>The process's real user id, from /proc; null when it cannot be read.</summary>
    public static uint? OwnerOf(int pid)
    {
        try
        {
            foreach (string line in System.IO.File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith("Uid:", StringComparison.Ordinal))
                    continue;
                string[] ids = line[4..].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                return ids.Length > 0 && uint.TryParse(ids[0], out uint uid) ? uid : null;
            }
        }
        catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern uint geteuid();

    /// <summary>
    /// Starts <paramref name="command"/> with its runtime suspended at startup
    /// (DOTNET_DefaultDiagnosticPortSuspend=1), so a session can be opened before its first
    /// instruction; <see cref="Resume"/> lets it run. Its output goes to our stderr, keeping our
    /// stdout for probe output.
    /// </summary>
    public static TargetProcess Launch(string[] command)
    {
        if (command.Length == 0)
            throw CliException.Usage("nothing to launch after '--'");
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in command.Skip(1))
            start.ArgumentList.Add(argument);
        start.Environment["DOTNET_DefaultDiagnosticPortSuspend"] = "1";
        Process child;
        try
        {
            child = Process.Start(start) ?? throw CliException.Failure($"could not start '{command[0]}'");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw CliException.Usage($"cannot start '{command[0]}': {ex.Message}");
        }
        child.OutputDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine(e.Data); };
        child.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine(e.Data); };
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();

        // The runtime publishes its diagnostics port before it suspends; wait for it to appear.
        var clock = Stopwatch.StartNew();
        while (!DiagnosticsClient.GetPublishedProcesses().Contains(child.Id))
        {
            if (child.HasExited)
                throw CliException.Failure($"'{command[0]}' exited with {child.ExitCode} before its .NET runtime started");
            if (clock.Elapsed > TimeSpan.FromSeconds(15))
            {
                child.Kill(entireProcessTree: true);
                throw CliException.Failure($"'{command[0]}' did not start a .NET runtime (process {child.Id} published no diagnostics port in 15 s)");
            }
            Thread.Sleep(10);
        }
        return new TargetProcess(child.Id, new DiagnosticsClient(child.Id), child);
    }

    /// <summary>Lets a launched child run. Does nothing for an attached process.</summary>
    public void Resume()
    {
        if (Child is not null)
            Client.ResumeRuntime();
    }

    /// <summary>A launched child that is still running when the trace stops early is stopped with it, as dotnet-trace does.</summary>
    public void Dispose()
    {
        if (Child is null)
            return;
        try
        {
            if (!Child.HasExited)
            {
                Child.Kill(entireProcessTree: true);
                Child.WaitForExit(5000);
            }
            // The parameterless wait also waits for the redirected output to be read to the end.
            Child.WaitForExit();
        }
        catch (InvalidOperationException)
        {
            // It exited meanwhile.
        }
        Child.Dispose();
    }
}
