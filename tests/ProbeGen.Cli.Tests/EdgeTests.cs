using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using Xunit;

namespace ProbeGen.Cli.Tests;

/// <summary>
/// The edges of a session, with real processes: the target dying, stdout's reader leaving, signals,
/// numbers that overflow, patterns by the thousand, another user's process. Each ends with one line
/// on stderr, the summary of what was received, the documented exit code, and never a stack trace
/// or a hang.
/// </summary>
public class EdgeTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(9)]
    [InlineData(15)]
    public void ATargetThatDiesMidTraceEndsItWithOneLineTheSummaryAndExitCode1(int signal)
    {
        using Target target = Processes.StartSample();
        using Process trace = Processes.StartCli("trace", "-p", target.Pid.ToString(), "orders:*", "payments:*", "--json");
        var stderr = trace.StandardError.ReadToEndAsync();
        Assert.NotNull(trace.StandardOutput.ReadLine());  // attached and streaming
        Processes.Signal(target.Process, signal);
        string rest = trace.StandardOutput.ReadToEnd();
        Assert.True(trace.WaitForExit(Timeout), "probegen did not exit after its target died");
        string[] lines = stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(1, trace.ExitCode);
        Assert.Equal($"probegen: process {target.Pid} exited during the session", lines.Last());
        Assert.DoesNotContain("Exception", stderr.Result);
        Assert.StartsWith("{\"summary\":{\"events\":", rest.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last());
    }

    [Theory]
    [InlineData("trace", "orders:*")]
    [InlineData("stats", "orders:*")]
    public void ClosingStdoutEndsTheRunWithTheSummaryOnStderr(string command, string pattern)
    {
        using Target target = Processes.StartSample();
        string[] extra = command == "stats" ? ["--interval", "100ms"] : [];
        using Process run = Processes.StartCli([command, "-p", target.Pid.ToString(), pattern, .. extra]);
        var stderr = run.StandardError.ReadToEndAsync();
        Assert.NotNull(run.StandardOutput.ReadLine());
        run.StandardOutput.Close();  // as `| head -1` does once it has its line
        Assert.True(run.WaitForExit(Timeout), $"probegen {command} kept running after its stdout closed");
        Assert.Equal(0, run.ExitCode);
        string[] lines = stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("probegen: stdout was closed; stopped", lines);
        Assert.Matches(@"^\d+ (events|snapshots), \d+ dropped$", lines.Last());
        Assert.DoesNotContain("Exception", stderr.Result);
        Assert.True(SpinWait.SpinUntil(() => CliTests.Consumers(target).Values.Sum() == 0, TimeSpan.FromSeconds(5)), "the target still has consumers attached");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(15)]
    public void SigintOrSigtermStopsCleanlyWithASummaryAndDetaches(int signal)
    {
        using Target target = Processes.StartSample();
        using Process trace = Processes.StartCli("trace", "-p", target.Pid.ToString(), "orders:placed", "--json");
        Assert.NotNull(trace.StandardOutput.ReadLine());
        Processes.Signal(trace, signal);
        string rest = trace.StandardOutput.ReadToEnd();
        Assert.True(trace.WaitForExit(Timeout));
        Assert.Equal(0, trace.ExitCode);
        Assert.Contains("{\"summary\":{\"events\":", rest);
        Assert.Equal(0, CliTests.Consumers(target).Values.Sum());
    }

    [Fact]
    public void NumbersThatOverflowAndInputsOverTheLimitsGetOneLineAndExitCode2()
    {
        using Target target = Processes.StartSample();
        string pid = target.Pid.ToString();
        CliTests.Expect(2, "longer than the longest duration", "trace", "-p", pid, "orders:*", "--duration", "1e12s");
        CliTests.Expect(2, "longer than the longest duration", "stats", "-p", pid, "orders:*", "--interval", "99999999h");
        CliTests.Expect(2, "--max-events", "trace", "-p", pid, "orders:*", "--max-events", "0");
        CliTests.Expect(2, "--buffersize", "trace", "-p", pid, "orders:*", "--buffersize", "100000");
        CliTests.Expect(2, "--rate", "trace", "-p", pid, "orders:*", "--rate", "-1");
        CliTests.Expect(2, "99999999999", "trace", "-p", "99999999999", "orders:*");
        CliTests.Expect(2, "the limit is 64", ["trace", "-p", pid, .. Enumerable.Range(0, 65).Select(i => $"p{i}:*")]);
        CliTests.Expect(2, "characters long", "trace", "-p", pid, "a:" + new string('x', 600));
        CliTests.Expect(2, "--where", "trace", "-p", pid, "orders:*", "--where", new string('(', 5000));
    }

    [Fact]
    public void MisspelledOptionsAreRejectedAndANameFindsTheProcess()
    {
        using Target target = Processes.StartSample();
        string pid = target.Pid.ToString();
        CliTests.Expect(2, "unknown option '--wher'", "trace", "-p", pid, "orders:*", "--wher", "amount > 1");
        CliTests.Expect(2, "unknown option '-x'", "stats", "-p", pid, "orders:*", "-x");
        CliTests.Expect(2, "no .NET process named 'NoSuchApp'", "list", "-n", "NoSuchApp");
        CliTests.Expect(2, "either -p PID or -n NAME", "list", "-n", "OrderService", "-p", pid);
        // A name no other process on the machine has (other tests' samples may still be exiting),
        // longer than the 15 characters of a process's comm: -n matches the executable's own name.
        string unique = "probegen-named-" + Guid.NewGuid().ToString("N")[..8];
        using Target named = Processes.StartSampleNamed(unique);
        Result byName = Processes.Run(Timeout, "list", "-n", unique, "--json");
        Assert.True(byName.ExitCode == 0, byName.ToString());
        Assert.Contains(byName.Json, j => j.GetProperty("probe").GetString() == "orders:placed");
        Result help = Processes.Run(Timeout, "trace", "--help");
        // Help is wrapped to the terminal's width, which may fall between "--" and "COMMAND".
        Assert.Contains("-- COMMAND", System.Text.RegularExpressions.Regex.Replace(help.Stdout, @"\s+", " "));
    }

    /// <summary>8,000 copies of one pattern are one pattern: the session starts, and the target delivers each hit once.</summary>
    [Fact]
    public void ThousandsOfDuplicatedPatternsCostWhatOneDoes()
    {
        using Target target = Processes.StartSample();
        Result result = Processes.Run(Timeout, ["trace", "-p", target.Pid.ToString(), "--json", "--max-events", "50", .. Enumerable.Repeat("orders:placed", 8000)]);
        Assert.True(result.ExitCode == 0, result.ToString());
        var ids = result.Hits.Select(h => h.GetProperty("args").GetProperty("orderId").GetInt32()).ToList();
        Assert.Equal(50, ids.Count);
        Assert.Equal(ids.Count, ids.Distinct().Count());  // each hit once, not 8,000 times
    }

    /// <summary>
    /// The target's buffer for a session is bounded (--buffersize): a reader that stalls costs the
    /// target at most that much memory, and what did not fit is counted as dropped, not lost silently.
    /// </summary>
    [Fact]
    public void AStalledReaderFillsABoundedBufferAndTheDropsAreCounted()
    {
        using Target target = Processes.StartSample();
        using Process trace = Processes.StartCli("trace", "-p", target.Pid.ToString(), "*", "--json", "--buffersize", "1");
        var stdout = trace.StandardOutput.ReadToEndAsync();
        Thread.Sleep(1500);
        Processes.Signal(trace, 19);  // SIGSTOP: the CLI reads nothing while the target keeps firing
        Thread.Sleep(6000);
        Processes.Signal(trace, 18);  // SIGCONT
        Thread.Sleep(1500);
        Processes.Signal(trace, 15);
        Assert.True(trace.WaitForExit(Timeout));
        Assert.Equal(0, trace.ExitCode);
        var summary = System.Text.Json.JsonDocument.Parse(stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last()).RootElement.GetProperty("summary");
        Assert.True(summary.GetProperty("dropped").GetInt64() > 0, $"no drop counted after a 6 s stall with a 1 MB buffer: {summary}");
        Assert.True(summary.GetProperty("events").GetInt64() > 0);
    }

    /// <summary>Another user's process: the reason is the permission, not that the process is gone.</summary>
    [Fact]
    public void AnotherUsersProcessIsPermissionDenied()
    {
        Assert.True(Environment.UserName == "root" || geteuid() == 0, "this test runs the CLI as nobody against a root target, so it needs root");
        using Target target = Processes.StartSample();
        var start = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetTempPath() };
        foreach (string a in new[] { "--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=/tmp", "DOTNET_CLI_HOME=/tmp", "dotnet", Processes.Cli, "trace", "-p", target.Pid.ToString(), "orders:*" })
            start.ArgumentList.Add(a);
        using Process asNobody = Process.Start(start)!;
        string stderr = asNobody.StandardError.ReadToEnd();
        asNobody.StandardOutput.ReadToEnd();
        Assert.True(asNobody.WaitForExit(Timeout));
        Assert.Equal(1, asNobody.ExitCode);
        Assert.Equal($"probegen: permission denied: process {target.Pid} runs as another user; run as the process's user or root", stderr.Trim());
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern uint geteuid();
}
