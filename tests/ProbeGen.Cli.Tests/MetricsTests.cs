using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using Xunit;

namespace ProbeGen.Cli.Tests;

/// <summary>
/// Probes as metrics of a running process, turned on with <c>probegen metrics</c> and read with the
/// real <c>dotnet-counters</c> (the version pinned in the repository's tool manifest).
/// </summary>
public class MetricsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);

    internal static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ProbeGen.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("no ProbeGen.sln above " + AppContext.BaseDirectory);
    }

    internal static (int ExitCode, string Output) Dotnet(string workingDirectory, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments)
            start.ArgumentList.Add(a);
        using Process process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(Timeout), $"dotnet {string.Join(' ', arguments)} did not finish");
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    [Fact]
    public void DotnetCountersShowsTheProbesThatProbegenMetricsPublishes()
    {
        string root = RepositoryRoot();
        var restore = Dotnet(root, "tool", "restore");
        Assert.True(restore.ExitCode == 0, restore.Output);

        using Target target = Processes.StartSample();
        using Process metrics = Processes.StartCli("metrics", "-p", target.Pid.ToString(), "orders:*", "payments:*");
        string announced = metrics.StandardError.ReadLine() ?? "";
        Assert.Contains("dotnet-counters monitor -p " + target.Pid, announced);

        string file = Path.Combine(Path.GetTempPath(), $"probegen-counters-{Guid.NewGuid():N}.json");
        try
        {
            var collect = Dotnet(root, "tool", "run", "dotnet-counters", "collect", "-p", target.Pid.ToString(), "--counters", "ProbeGen",
                "--format", "json", "-o", file, "--duration", "00:00:00:04");
            Assert.True(collect.ExitCode == 0, collect.Output);
            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(file));
            var events = doc.RootElement.GetProperty("Events").EnumerateArray()
                .Select(e => (Name: e.GetProperty("name").GetString()!, Tags: e.GetProperty("tags").GetString()!, Value: e.GetProperty("value").GetDouble()))
                .ToList();
            Assert.Contains(events, e => e.Name.StartsWith("probegen.calls", StringComparison.Ordinal) && e.Tags == "probe.id=orders:placed" && e.Value > 0);
            Assert.Contains(events, e => e.Name.StartsWith("probegen.calls", StringComparison.Ordinal) && e.Tags == "probe.id=payments:charge" && e.Value > 0);
            // Declined cards: errors of the method probe, by exception type.
            Assert.Contains(events, e => e.Name.StartsWith("probegen.errors", StringComparison.Ordinal)
                && e.Tags.Contains("error.type=OrderService.PaymentDeclinedException") && e.Tags.Contains("probe.id=payments:charge"));
            // Duration percentiles of the method probe; a static probe has none.
            Assert.Contains(events, e => e.Name.StartsWith("probegen.duration", StringComparison.Ordinal) && e.Tags.Contains("probe.id=payments:charge") && e.Tags.Contains("Percentile=50"));
            Assert.DoesNotContain(events, e => e.Name.StartsWith("probegen.duration", StringComparison.Ordinal) && e.Tags.Contains("probe.id=orders:placed"));
        }
        finally
        {
            File.Delete(file);
        }

        // Stopping probegen metrics unpublishes: the probes are detached again.
        Processes.Signal(metrics, 2);
        Assert.True(metrics.WaitForExit(Timeout));
        Assert.Equal(0, metrics.ExitCode);
        Assert.True(System.Threading.SpinWait.SpinUntil(() => CliTests.Consumers(target).Values.Sum() == 0, TimeSpan.FromSeconds(5)));
    }
}
