using System;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>The perf backend against real gcc-built targets: exact counts and values.</summary>
public class PerfBackendTests(NativeTargets targets) : IClassFixture<NativeTargets>
{
    private const int Iterations = 50, Threads = 4;

    /// <summary>Attaches, then launches the target, as launch mode does, and collects until it exits.</summary>
    private (Collector Hits, PerfUprobeSession Session, string Output) Launch(string[] specs, string file, params string[] arguments)
    {
        var hits = new Collector();
        PerfUprobeSession session = PerfUprobeSession.Start(specs.Select(UprobeSpec.Parse), pid: null, hits.Add);
        using Process target = NativeTargets.Start(file, arguments);
        session.ProcessFilter = target.Id;
        string output = target.StandardOutput.ReadToEnd();
        Assert.True(target.WaitForExit(60_000));
        Thread.Sleep(200);  // the reader polls every 50 ms
        session.Dispose();
        return (hits, session, output.Trim());
    }

    [Fact]
    public void ExactCountsAndValuesOfEveryWidthFromFourThreads()
    {
        string t = targets["targets"];
        var (hits, session, output) = Launch(
            [$"{t}:add6(i64,i64,i64,i64,i64,i64)", $"{t}:add6%return(i64)", $"{t}:greet(str,i32)", $"{t}:widths(i8,i16,u8,u16,i32,u64)"],
            t, Iterations.ToString(), Threads.ToString(), "0", "300");
        Assert.StartsWith("total ", output);
        Assert.Equal(0, session.Dropped);

        var add6 = hits.Of("add6");
        Assert.Equal(Iterations * Threads, add6.Count);
        Assert.Equal(Threads, add6.Select(h => h.Tid).Distinct().Count());
        // add6(i, 1, 2, 3, 4, thread id): every (i, id) pair exactly once.
        Assert.Equal(
            Enumerable.Range(0, Threads).SelectMany(id => Enumerable.Range(0, Iterations).Select(i => $"{i},1,2,3,4,{id}")).Order(),
            add6.Select(h => string.Join(",", h.Values)).Order());

        var returns = hits.Of("add6", isReturn: true);
        Assert.Equal(Iterations * Threads, returns.Count);
        Assert.Equal(add6.Sum(h => h.Values.Cast<long>().Sum()), returns.Sum(h => (long)h.Values[0]!));

        var greet = hits.Of("greet");
        Assert.Equal(Iterations * Threads, greet.Count);
        Assert.Equal(Iterations * Threads / 2, greet.Count(h => (string?)h.Values[0] == "probe"));
        Assert.Equal(Iterations * Threads / 2, greet.Count(h => (string?)h.Values[0] == "gen"));
        Assert.All(greet, h => Assert.Equal(2L, h.Values[1]));

        var widths = hits.Of("widths");
        Assert.Equal(Iterations * Threads, widths.Count);
        Assert.All(widths, h => Assert.Equal(new object?[] { -5L, -300L, 200UL, 60000UL, -70000L, 0x1234567890abcdefUL }, h.Values));
    }

    [Fact]
    public void ASharedLibraryFunction()
    {
        string lib = targets["libcalc.so"];
        var (hits, _, output) = Launch([$"{lib}:calc_mul(i32,i32)", $"{lib}:calc_mul%return(i32)"], targets["uselib"], "100");
        Assert.Equal("total 14850", output);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"{i},3"), hits.Of("calc_mul").Select(h => string.Join(",", h.Values)));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (long)i * 3), hits.Of("calc_mul", isReturn: true).Select(h => (long)h.Values[0]!));
    }

    [Fact]
    public void ANonPieExecutable()
    {
        string t = targets["targets-nopie"];
        var (hits, _, _) = Launch([$"{t}:add6%return(i64)"], t, "25", "2");
        Assert.Equal(50, hits.Of("add6", isReturn: true).Count);
    }

    [Fact]
    public void AnOffsetSpecProbesTheSameInstruction()
    {
        string t = targets["targets"];
        ulong offset = ElfSymbols.ResolveOffset(t, "add6");
        var (hits, _, _) = Launch([$"{t}:0x{offset:x}(i64)"], t, "10", "1");
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), hits.Hits.Select(h => (long)h.Values[0]!).Order());
    }

    [Fact]
    public void AttachToARunningProcessAndDetachCleanly()
    {
        string t = targets["targets"];
        string expected = NativeTargets.RunToEnd(t, "400", "2", "2");
        using Process target = NativeTargets.Start(t, "400", "2", "2");
        Thread.Sleep(200);
        var hits = new Collector();
        using (PerfUprobeSession.Start([UprobeSpec.Parse($"{t}:greet(str,i32)")], target.Id, hits.Add))
            Thread.Sleep(500);
        Assert.NotEmpty(hits.Hits);
        Assert.All(hits.Hits, h => Assert.Equal(target.Id, h.Pid));
        int afterDetach = hits.Hits.Count;
        // Detached: the target runs on unprobed and gets the right answer.
        string output = target.StandardOutput.ReadToEnd();
        Assert.True(target.WaitForExit(60_000));
        Assert.Equal(expected, output.Trim());
        Assert.Equal(afterDetach, hits.Hits.Count);
    }

    [Fact]
    public void KillingTheTracerLeavesTheTargetCorrect()
    {
        string t = targets["targets"];
        string expected = NativeTargets.RunToEnd(t, "300", "2", "2");
        using Process target = NativeTargets.Start(t, "300", "2", "2");
        using Process tracer = NativeTargets.Start("dotnet", targets.Cli, "uprobe", $"{t}:greet(str,i32)", "-p", target.Id.ToString(), "--json");
        Assert.NotNull(tracer.StandardOutput.ReadLine());  // attached: a first hit
        tracer.Kill();  // SIGKILL: the kernel drops the uprobes with the descriptors
        string output = target.StandardOutput.ReadToEnd();
        Assert.True(target.WaitForExit(60_000));
        Assert.Equal(0, target.ExitCode);
        Assert.Equal(expected, output.Trim());
    }
}
