using System;
using System.Diagnostics;
using System.Linq;
using System.Text.Json;
using System.Threading;
using Xunit;

namespace ProbeGen.Cli.Tests;

/// <summary>End to end: the real CLI against the real sample, over the real diagnostics IPC.</summary>
public class CliTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public void ListShowsEveryProbeOfARunningProcess()
    {
        using Target target = Processes.StartSample();
        Result result = Processes.Run(Timeout, "list", "-p", target.Pid.ToString(), "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        var probes = result.Json.ToDictionary(p => p.GetProperty("probe").GetString()!);
        Assert.Equal(["catalog:lookup", "orders:cache_lookup", "orders:placed", "payments:charge"], probes.Keys.Order());
        Assert.Equal("static", probes["orders:placed"].GetProperty("kind").GetString());
        Assert.Equal("method", probes["payments:charge"].GetProperty("kind").GetString());
        Assert.Equal("int orderId, decimal amount, string customer", probes["orders:placed"].GetProperty("params").GetString());
        Assert.Equal("disabled", probes["orders:placed"].GetProperty("state").GetString());
        Assert.EndsWith("Probes.cs", probes["orders:placed"].GetProperty("file").GetString());
    }

    [Fact]
    public void TraceStreamsJsonHitsAndASummary()
    {
        using Target target = Processes.StartSample();
        Result result = Processes.Run(Timeout, "trace", "-p", target.Pid.ToString(), "payments:charge", "--max-events", "20", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        var hits = result.Hits;
        Assert.Equal(20, hits.Count);
        foreach (JsonElement hit in hits)
        {
            Assert.Equal(target.Pid, hit.GetProperty("pid").GetInt32());
            Assert.Equal("payments:charge", hit.GetProperty("probe").GetString());
            Assert.Equal("[redacted]", hit.GetProperty("args").GetProperty("card").GetString());
            Assert.True(hit.GetProperty("ts").GetInt64() > 1_700_000_000_000_000_000);
            if (hit.GetProperty("point").GetString() == "return")
            {
                Assert.True(hit.GetProperty("elapsed_ns").GetInt64() > 0);
                bool threw = hit.GetProperty("exception").ValueKind == JsonValueKind.String;
                Assert.Equal(threw, hit.GetProperty("ret").ValueKind == JsonValueKind.Null);
            }
        }
        Assert.Equal(20, result.Summary.GetProperty("events").GetInt64());
        Assert.Equal(0, result.Summary.GetProperty("dropped").GetInt64());
        // The sample marks the card [ProbeRedact]: no card number leaves the process, not even in a decline's message.
        Assert.DoesNotContain("4111-", result.Stdout);
    }

    /// <summary>
    /// Launch mode traces from the first instruction: the sample's bounded run of 40 orders has 4
    /// declined cards (card numbers ending in 0), so exactly 36 orders:placed hits, no more, no less.
    /// </summary>
    [Fact]
    public void LaunchModeMissesNoHitFromStartup()
    {
        Result result = Processes.Run(Timeout, "trace", "orders:placed", "payments:charge", "--json", "--",
            "dotnet", Processes.Sample, "--quiet", "--orders", "40");
        Assert.True(result.ExitCode == 0, result.ToString());
        var placed = result.Hits.Where(h => h.GetProperty("probe").GetString() == "orders:placed").ToList();
        Assert.Equal(Enumerable.Range(1, 36), placed.Select(h => h.GetProperty("args").GetProperty("orderId").GetInt32()).Order());
        var returns = result.Hits.Where(h => h.GetProperty("point").GetString() == "return").ToList();
        Assert.Equal(40, returns.Count);
        Assert.Equal(4, returns.Count(r => r.GetProperty("exception").GetString()?.Contains("PaymentDeclinedException") == true));
        // 36 placed, 40 entries and 40 returns of payments:charge.
        Assert.Equal(116, result.Summary.GetProperty("events").GetInt64());
        Assert.Equal(0, result.Summary.GetProperty("dropped").GetInt64());
    }

    /// <summary>
    /// A workload at full speed (no simulated latency) makes the session batch its hits, and it
    /// ends by returning from Main right after its last hit: the runtime ends EventPipe sessions
    /// before any exit handler runs, so only the exit guard can write out the last batches. Every
    /// one of the 270,000 orders:placed hits arrives, each order id once.
    /// </summary>
    [Fact]
    public void AFullSpeedBurstRightBeforeExitArrivesWhole()
    {
        Result result = Processes.Run(Timeout, "trace", "orders:placed", "--json", "--",
            "dotnet", Processes.Sample, "--quiet", "--orders", "300000", "--no-latency");
        Assert.True(result.ExitCode == 0, result.ToString()[..Math.Min(2000, result.ToString().Length)]);
        Assert.Equal(0, result.Summary.GetProperty("dropped").GetInt64());
        Assert.Equal(270_000, result.Summary.GetProperty("events").GetInt64());
        var ids = result.Hits.Select(h => h.GetProperty("args").GetProperty("orderId").GetInt32()).ToList();
        Assert.Equal(270_000, ids.Count);
        Assert.Equal(270_000, ids.Distinct().Count());
    }

    [Fact]
    public void OverlappingPatternsDeliverEachHitOnce()
    {
        Result result = Processes.Run(Timeout, "trace", "orders:placed", "*:placed", "orders:*", "--json", "--",
            "dotnet", Processes.Sample, "--quiet", "--orders", "40");
        Assert.True(result.ExitCode == 0, result.ToString());
        var placed = result.Hits.Where(h => h.GetProperty("probe").GetString() == "orders:placed").ToList();
        Assert.Equal(Enumerable.Range(1, 36), placed.Select(h => h.GetProperty("args").GetProperty("orderId").GetInt32()).Order());
    }

    [Fact]
    public void WhereFiltersInTheTarget()
    {
        Result result = Processes.Run(Timeout, "trace", "orders:placed", "--json", "--where", "amount > 30 && customer != \"ada\"", "--",
            "dotnet", Processes.Sample, "--quiet", "--orders", "40");
        Assert.True(result.ExitCode == 0, result.ToString());
        var hits = result.Hits;
        Assert.NotEmpty(hits);
        Assert.True(hits.Count < 36, $"{hits.Count} of 36 orders passed the filter: it filtered nothing");
        foreach (JsonElement hit in hits)
        {
            Assert.True(hit.GetProperty("args").GetProperty("amount").GetDecimal() > 30);
            Assert.NotEqual("ada", hit.GetProperty("args").GetProperty("customer").GetString());
        }
    }

    [Fact]
    public void StatsSendsCountsAndLatencyHistograms()
    {
        using Target target = Processes.StartSample();
        Result result = Processes.Run(Timeout, "stats", "-p", target.Pid.ToString(), "payments:*", "--interval", "500ms", "--duration", "2s", "--json");
        Assert.True(result.ExitCode == 0, result.ToString());
        var snapshots = result.Json.Where(j => j.TryGetProperty("probes", out _)).ToList();
        Assert.True(snapshots.Count >= 2, result.ToString());
        JsonElement charge = snapshots[^1].GetProperty("probes").EnumerateArray().Single(p => p.GetProperty("probe").GetString() == "payments:charge");
        Assert.True(charge.GetProperty("count").GetInt64() > 0);
        var buckets = charge.GetProperty("latency_ns").EnumerateArray().Select(b => (Low: b[0].GetInt64(), Count: b[2].GetInt64())).ToList();
        long recorded = buckets.Sum(b => b.Count);
        Assert.InRange(recorded, 1, charge.GetProperty("count").GetInt64());  // returns only, so at most the hit count
        // ChargeAsync awaits Task.Delay(1..3 ms): almost every latency is at least half a millisecond.
        Assert.True(buckets.Where(b => b.Low >= 512 * 1024).Sum(b => b.Count) * 10 >= recorded * 9, string.Join(" ", buckets));
    }

    [Fact]
    public void TwoConcurrentSessionsEachSeeOnlyWhatTheyAskedFor()
    {
        using Target target = Processes.StartSample();
        using Process a = Processes.StartCli("trace", "-p", target.Pid.ToString(), "orders:placed", "--duration", "3s", "--json");
        using Process b = Processes.StartCli("trace", "-p", target.Pid.ToString(), "payments:charge", "--duration", "3s", "--json", "--where", "amount > 20");
        var outA = a.StandardOutput.ReadToEndAsync();
        var outB = b.StandardOutput.ReadToEndAsync();
        Assert.True(a.WaitForExit(Timeout) && b.WaitForExit(Timeout));
        var hitsA = new Result(a.ExitCode, outA.Result, "").Hits;
        var hitsB = new Result(b.ExitCode, outB.Result, "").Hits;
        Assert.NotEmpty(hitsA);
        Assert.NotEmpty(hitsB);
        Assert.All(hitsA, h => Assert.Equal("orders:placed", h.GetProperty("probe").GetString()));
        Assert.All(hitsB, h => Assert.Equal("payments:charge", h.GetProperty("probe").GetString()));
        Assert.All(hitsB, h => Assert.True(h.GetProperty("args").GetProperty("amount").GetDecimal() > 20));
    }

    [Fact]
    public void KillingTheCliDetachesEverythingWithinTwoSeconds()
    {
        using Target target = Processes.StartSample();
        using Process trace = Processes.StartCli("trace", "-p", target.Pid.ToString(), "orders:*", "payments:*", "--json");
        Assert.NotNull(trace.StandardOutput.ReadLine());  // a first hit: the session is attached
        Assert.True(Consumers(target).Values.Sum() > 0);

        Processes.Signal(trace, 9);
        var clock = Stopwatch.StartNew();
        while (Consumers(target).Values.Sum() > 0)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), "probes still attached 2 s after the CLI was killed: " + string.Join(", ", Consumers(target)));
            Thread.Sleep(100);
        }
    }

    [Fact]
    public void ErrorsGetOneLineAndTheirExitCode()
    {
        using Target target = Processes.StartSample();
        string pid = target.Pid.ToString();
        Expect(2, "no such process", "trace", "-p", "999999", "orders:*");
        Expect(2, "whitespace", "trace", "-p", pid, "orders placed");
        Expect(2, "--where", "trace", "-p", pid, "orders:*", "--where", "amount >");
        Expect(2, "has no argument 'nosuch'", "trace", "-p", pid, "orders:placed", "--where", "nosuch == 1");
        Expect(2, "type mismatch", "trace", "-p", pid, "orders:placed", "--where", "customer > 3");
        Expect(2, "is redacted; --where cannot compare it", "trace", "-p", pid, "payments:charge", "--where", "card == \"4111-0001\"");
        Expect(2, "-p PID", "trace", "orders:*");
        Expect(2, "--duration", "trace", "-p", pid, "orders:*", "--duration", "soon");
        Expect(1, "not a .NET process", "list", "-p", "1");

        using Target refusing = Processes.StartSample(("PROBEGEN_CONTROL", "0"));
        Expect(1, "refuses remote enabling", "trace", "-p", refusing.Pid.ToString(), "orders:*");
    }

    [Fact]
    public void AProcessWithoutProbeGenIsReportedAsSuch()
    {
        // This test host is a .NET process with a diagnostics port but no ProbeGen.
        Expect(1, "ProbeGen is not loaded", "list", "-p", Environment.ProcessId.ToString());
    }

    internal static void Expect(int exitCode, string message, params string[] arguments)
    {
        Result result = Processes.Run(Timeout, arguments);
        Assert.True(result.ExitCode == exitCode, $"probegen {string.Join(' ', arguments)}: {result}");
        string[] lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("probegen: ", lines[0]);
        Assert.Contains(message, lines[0]);
    }

    internal static System.Collections.Generic.Dictionary<string, int> Consumers(Target target)
    {
        Result list = Processes.Run(Timeout, "list", "-p", target.Pid.ToString(), "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        return list.Json.ToDictionary(p => p.GetProperty("probe").GetString()!, p => p.GetProperty("consumers").GetInt32());
    }
}
