using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading;
using Xunit;

// The tests start real processes on a 2-core machine; one at a time keeps their timing honest.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace ProbeGen.Cli.Tests;

/// <summary>Runs the real probegen CLI and the real sample as processes.</summary>
internal static class Processes
{
    private static readonly string Configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Name;
    private static readonly string Bin = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", ".."));

    public static string Cli => Path.Combine(Bin, "ProbeGen.Cli", Configuration, "probegen.dll");

    public static string Sample => Path.Combine(Bin, "OrderService", Configuration, "OrderService.dll");

    /// <summary>Starts the sample taking orders until killed, and waits until probegen can see it.</summary>
    public static Target StartSample(params (string Name, string Value)[] environment)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Sample);
        foreach (var (name, value) in environment)
            start.Environment[name] = value;
        return StartAndWait(start);
    }

    /// <summary>
    /// Starts the sample through a copy of its apphost named <paramref name="executable"/>, next to
    /// the original (the apphost finds the app's dll beside itself): a process with a name no other
    /// process on the machine has. The copy is deleted when the target is disposed.
    /// </summary>
    public static Target StartSampleNamed(string executable)
    {
        string apphost = Path.Combine(Path.GetDirectoryName(Sample)!, "OrderService");
        string copy = Path.Combine(Path.GetDirectoryName(Sample)!, executable);
        File.Copy(apphost, copy, overwrite: true);
        File.SetUnixFileMode(copy, File.GetUnixFileMode(apphost));
        return StartAndWait(new ProcessStartInfo(copy) { RedirectStandardOutput = true, RedirectStandardError = true }, copy);
    }

    private static Target StartAndWait(ProcessStartInfo start, string? deleteAtDispose = null)
    {
        start.ArgumentList.Add("--forever");
        start.ArgumentList.Add("--quiet");
        Process process;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                process = Process.Start(start)!;
                break;
            }
            catch (System.ComponentModel.Win32Exception) when (deleteAtDispose is not null && attempt < 20)
            {
                // ETXTBSY: a process forked elsewhere in this test host while the copy was being
                // written still holds it open for writing until it execs.
                Thread.Sleep(100);
            }
        }
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var clock = Stopwatch.StartNew();
        while (!File.Exists($"/proc/{process.Id}/maps") || !File.ReadAllText($"/proc/{process.Id}/maps").Contains("ProbeGen.Runtime.dll"))
        {
            Assert.False(process.HasExited, "the sample exited at startup");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "the sample did not load ProbeGen in 30 s");
            Thread.Sleep(50);
        }
        return new Target(process, deleteAtDispose);
    }

    /// <summary>Runs the CLI to completion.</summary>
    public static Result Run(TimeSpan timeout, params string[] arguments)
    {
        using Process process = StartCli(arguments);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"probegen {string.Join(' ', arguments)} did not finish in {timeout}: {stdout.Result} {stderr.Result}");
        }
        process.WaitForExit();
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Sends a signal (2 = SIGINT, 9 = SIGKILL) with kill(2), needing no kill binary on the machine.</summary>
    public static void Signal(Process process, int signal) => Assert.Equal(0, kill(process.Id, signal));

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    public static Process StartCli(params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Cli);
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        return Process.Start(start)!;
    }
}

internal sealed record Result(int ExitCode, string Stdout, string Stderr)
{
    public string[] Lines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Every stdout line, parsed as JSON (fails the test on a line that is not JSON).</summary>
    public List<JsonElement> Json => Lines.Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    public List<JsonElement> Hits => Json.Where(j => j.TryGetProperty("probe", out _)).ToList();

    public JsonElement Summary => Json.Single(j => j.TryGetProperty("summary", out _)).GetProperty("summary");

    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>A running sample, killed at dispose.</summary>
internal sealed class Target(Process process, string? deleteAtDispose = null) : IDisposable
{
    public int Pid => process.Id;

    public Process Process => process;

    public void Dispose()
    {
        try
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
        }
        process.Dispose();
        if (deleteAtDispose is not null)
            File.Delete(deleteAtDispose);
    }
}
