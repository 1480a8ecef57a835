using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>The perf backend: the shared contract, and a tracer killed mid-run.</summary>
public class PerfBackendTests(NativeTargets targets) : BackendTests(targets), IClassFixture<NativeTargets>
{
    protected override IUprobeSession LaunchSession(UprobeSpec[] specs, string[] command, Collector hits, int standardOutput) =>
        PerfUprobeSession.Launch(specs, command, hits.Add, standardOutput);

    protected override IUprobeSession Attach(string[] specs, int pid, Collector hits) =>
        PerfUprobeSession.Start(specs.Select(UprobeSpec.Parse), pid, hits.Add);

    [Fact]
    public void KillingTheTracerLeavesTheTargetCorrect()
    {
        string t = Targets["targets"];
        string expected = NativeTargets.RunToEnd(t, "300", "2", "2");
        using Process target = NativeTargets.Start(t, "300", "2", "2");
        using Process tracer = NativeTargets.Start("dotnet", Targets.Cli, "uprobe", $"{t}:greet(str,i32)", "-p", target.Id.ToString(), "--json");
        Assert.NotNull(tracer.StandardOutput.ReadLine());  // attached: a first hit
        tracer.Kill();  // SIGKILL: the kernel drops the uprobes with the descriptors
        string output = target.StandardOutput.ReadToEnd();
        Assert.True(target.WaitForExit(60_000));
        Assert.Equal(0, target.ExitCode);
        Assert.Equal(expected, output.Trim());
    }

    [Fact]
    public void SystemWideSeesEveryProcessRunningTheBinary()
    {
        string t = Targets["targets"];
        using Process first = NativeTargets.Start(t, "300", "1", "5");
        using Process second = NativeTargets.Start(t, "300", "1", "5");
        var (exitCode, lines, errors) = NativeTargets.RunToEnd(["dotnet", Targets.Cli, "uprobe", "-a", "--duration", "1s", "--json", $"{t}:greet(str,i32)"]);
        first.Kill();
        second.Kill();
        Assert.True(exitCode == 0, errors);
        var pids = lines.Where(l => l.StartsWith("{\"ts\"")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("pid").GetInt32()).ToHashSet();
        Assert.Contains(first.Id, pids);
        Assert.Contains(second.Id, pids);
    }

    [Fact]
    public void WithoutTracefsStringsComeFromAStackCopyAndTheLiveProcess()
    {
        // The fallback where tracefs is missing: the uprobe PMU, a stack copy per hit, and reads of
        // the live process, held at its threads' exits. Exact for stack buffers, literals and live heap strings.
        TracefsEvent.Disabled = true;
        try
        {
            StringsAsTheyWereAtTheHitInAProgramThatExitsRightAway();
        }
        finally
        {
            TracefsEvent.Disabled = false;
        }
    }
}
