using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.Win32.SafeHandles;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>
/// The ptrace backend: the shared contract, plus what only it has to get right: int3 written by
/// the engine, the displaced instruction executed out of line, return addresses swapped for a
/// trampoline, and every byte and return address restored on detach.
/// </summary>
public class PtraceBackendTests(NativeTargets targets) : BackendTests(targets), IClassFixture<NativeTargets>
{
    private sealed class Neighbour(UprobeKey key) : UprobeEntry(key, UprobeSpec.Parse("/neighbour:0x1"));

    protected override IUprobeSession LaunchSession(UprobeSpec[] specs, string[] command, Collector hits, int standardOutput) =>
        PtraceUprobeSession.Launch(specs, command, hits.Add, standardOutput);

    protected override IUprobeSession Attach(string[] specs, int pid, Collector hits) =>
        PtraceUprobeSession.Start(specs.Select(UprobeSpec.Parse), pid, hits.Add);

    [Fact]
    public void AttachToARunningMultiThreadedProcessMissNothingAndDetachCleanly()
    {
        string t = Targets["targets"];
        string expected = NativeTargets.RunToEnd(t, "300", "4", "1");
        var (shell, pid) = StartUnowned(t, "300", "4", "1");
        using Process target = shell;
        Thread.Sleep(100);
        var hits = new Collector();
        using (Attach([$"{t}:add6(i64,i64,i64,i64,i64,i64)", $"{t}:greet(str,i32)", $"{t}:widths(i8,i16,u8,u16,i32,u64)"], pid, hits))
            Thread.Sleep(400);

        var add6 = hits.Of("add6");
        Assert.True(add6.Count > 50, $"only {add6.Count} hits");
        Assert.True(add6.Select(h => h.Tid).Distinct().Count() >= 2);
        // No call was missed while attached: each thread's loop counters form one unbroken run.
        foreach (var thread in add6.GroupBy(h => h.Tid))
        {
            long[] i = thread.Select(h => (long)h.Values[0]!).Order().ToArray();
            Assert.Equal(Enumerable.Range((int)i[0], i.Length).Select(x => (long)x), i);
            long id = (long)thread.First().Values[5]!;
            Assert.All(thread, h => Assert.Equal(new object?[] { h.Values[0], 1L, 2L, 3L, 4L, id }, h.Values));
        }
        Assert.All(hits.Of("greet"), h => Assert.Contains((string?)h.Values[0], new[] { "gen", "probe" }));
        Assert.All(hits.Of("widths"), h => Assert.Equal(new object?[] { -5L, -300L, 200UL, 60000UL, -70000L, 0x1234567890abcdefUL }, h.Values));
        Assert.InRange(hits.Of("greet").Count, add6.Count - 8, add6.Count + 8);  // both probed once per iteration, give or take the edges

        // Every byte restored: the target runs on and gets the right answer.
        string output = target.StandardOutput.ReadToEnd();
        Assert.True(target.WaitForExit(60_000));
        Assert.Equal(0, target.ExitCode);
        Assert.Equal(expected, output.Trim());
    }

    [Fact]
    public void DetachingWhileAProbedFunctionSleepsPutsItsReturnAddressBack()
    {
        string n = Targets["nested"];
        string expected = NativeTargets.RunToEnd(n, "3", "500");
        var (shell, pid) = StartUnowned(n, "3", "500");
        using Process target = shell;
        var hits = new Collector();
        // Naps run from 0 to 500 ms and from 500 to 1000 ms. Attached during the first (its return
        // address is not swapped) and detached during the second (its return address is).
        Thread.Sleep(150);
        using (Attach([$"{n}:nap%return(i32)", $"{n}:fact%return(i64)"], pid, hits))
            Thread.Sleep(650);
        Assert.Empty(hits.Of("nap", isReturn: true));
        Assert.Equal([1, 2, 6, 24, 120, 720, 5040, 40320, 362880, 3628800, 1, 2, 6], hits.Of("fact", isReturn: true).Select(h => (long)h.Values[0]!));
        // Had the trampoline stayed on its stack, the next return would trap with no tracer and kill it.
        string output = target.StandardOutput.ReadToEnd();
        Assert.True(target.WaitForExit(60_000));
        Assert.Equal(0, target.ExitCode);
        Assert.Equal(expected, output.Trim());
    }

    [Fact]
    public void AttachingAndDetachingOverAndOverUnderLoadNeverHurtsTheTarget()
    {
        // Each detach catches threads everywhere: in a slot, at a trampoline, with a SIGTRAP queued
        // behind the interrupt, with return addresses swapped. Any byte or address left behind kills
        // the target with SIGTRAP or corrupts its result.
        string t = Targets["targets"];
        string expected = NativeTargets.RunToEnd(t, "1500", "4", "1");
        var (shell, pid) = StartUnowned(t, "1500", "4", "1");
        using Process target = shell;
        var hits = new Collector();
        for (int cycle = 0; cycle < 25 && !target.HasExited; cycle++)
        {
            try
            {
                using (Attach([$"{t}:add6%return(i64)", $"{t}:greet(str,i32)", $"{t}:widths(i8,i16,u8,u16,i32,u64)"], pid, hits))
                    Thread.Sleep(20);
            }
            catch (UprobeException) when (target.HasExited)
            {
                break;
            }
            Thread.Sleep(10);
        }
        string output = target.StandardOutput.ReadToEnd();
        Assert.True(target.WaitForExit(60_000));
        Assert.Equal(0, target.ExitCode);
        Assert.Equal(expected, output.Trim());
        Assert.NotEmpty(hits.Of("add6", isReturn: true));
    }

    [Theory]
    [InlineData("INT")]
    [InlineData("TERM")]
    public void TheCliRestoresEverythingOnASignal(string signal)
    {
        string t = Targets["targets"];
        string expected = NativeTargets.RunToEnd(t, "600", "2", "2");
        var (shell, pid) = StartUnowned(t, "600", "2", "2");
        using Process target = shell;
        using Process cli = NativeTargets.Start("dotnet", Targets.Cli, "uprobe", "--backend", "ptrace", "--json",
            $"{t}:greet(str,i32)", $"{t}:add6%return(i64)", "-p", pid.ToString());
        Assert.StartsWith("{\"ts\"", cli.StandardOutput.ReadLine());  // attached: a first hit
        using (Process kill = Process.Start("kill", [$"-{signal}", cli.Id.ToString()])!)
            kill.WaitForExit();
        string rest = cli.StandardOutput.ReadToEnd();
        Assert.True(cli.WaitForExit(30_000));
        Assert.Contains("\"summary\"", rest);  // it ended its run, not just died
        string output = target.StandardOutput.ReadToEnd();
        Assert.True(target.WaitForExit(60_000));
        Assert.Equal(0, target.ExitCode);
        Assert.Equal(expected, output.Trim());
    }

    [Fact]
    public void TrapsFindTheirProbesWhileOtherSessionsAttachAndDetachInTheSharedRegistry()
    {
        // The engine's access pattern for real: every trap of this session looks up (device,
        // inode, offset) in the registry both backends share, while entries with the same inode and the
        // neighbouring offsets are inserted and removed as fast as one thread can (the open
        // addressing table's deletions shift the session's own entries around).
        string t = Targets["targets"];
        (ulong device, ulong inode) = Native.FileId(t);
        ulong offset = ElfSymbols.ResolveOffset(t, "add6");
        var hits = new Collector();
        long churns = 0;
        using var done = new CancellationTokenSource();
        var churn = new Thread(() =>
        {
            var random = new Random(11);
            while (!done.IsCancellationRequested)
            {
                var neighbour = new Neighbour(new UprobeKey(device, inode, offset + 1 + (ulong)random.Next(64), random.Next(2) == 0));
                if (UprobeRegistry.Probes.TryAdd(neighbour))
                    UprobeRegistry.Probes.Remove(neighbour);
                churns++;
            }
        });
        string outputFile = Path.Combine(Targets.Directory, $"stdout-{Guid.NewGuid():N}");
        using (SafeFileHandle stdout = File.OpenHandle(outputFile, FileMode.Create, FileAccess.Write))
        using (var session = PtraceUprobeSession.Launch([UprobeSpec.Parse($"{t}:add6(i64)"), UprobeSpec.Parse($"{t}:add6%return(i64)")], [t, "3000", "4"], hits.Add, (int)stdout.DangerousGetHandle()))
        {
            churn.Start();
            Assert.True(session.WaitForEnd(TimeSpan.FromSeconds(60)));
            done.Cancel();
            churn.Join();
            Assert.Equal(0, session.ExitCode);
        }
        Assert.True(churns > 10_000, $"only {churns} attach/detach cycles");
        Assert.Equal(12000, hits.Of("add6").Count);
        Assert.Equal(12000, hits.Of("add6", isReturn: true).Count);
    }

    [Fact]
    public void ADetachRacingATrapWaitsForTheTrapsReference()
    {
        // The interleaving from the review, replayed: a trap has looked its probes up and left the
        // read-side section; before it uses them, a detach unlinks each one and waits out a grace
        // period and every reclamation queued by then. The trap must still hold a live probe, for
        // its entry hit and for the return it hijacked, and drop it only when it is done.
        string t = Targets["targets"];
        var raced = new System.Collections.Concurrent.ConcurrentDictionary<bool, UprobeEntry>();
        var aliveAtDelivery = new System.Collections.Concurrent.ConcurrentDictionary<bool, bool>();
        PtraceUprobeSession.TrapAcquiredForTests = probe =>
        {
            if (!raced.TryAdd(probe.Spec.Return, probe))
                return;
            Assert.True(UprobeRegistry.Probes.Remove(probe));
            Probes.Domain.Synchronize();
            Probes.Domain.Barrier();
        };
        try
        {
            // One thread, one iteration: greet runs once, so its unlinked site traps only once.
            PtraceUprobeSession session = PtraceUprobeSession.Launch(
                [UprobeSpec.Parse($"{t}:greet(str,i32)"), UprobeSpec.Parse($"{t}:greet%return(i32)")], [t, "1", "1"],
                hit => aliveAtDelivery[hit.Spec.Return] = raced[hit.Spec.Return].IsAlive, standardOutput: -1);
            using (session)
                Assert.True(session.WaitForEnd(TimeSpan.FromSeconds(60)));
            Assert.Equal(0, session.ExitCode);
            Assert.Equal(0, session.FaultCount);
        }
        finally
        {
            PtraceUprobeSession.TrapAcquiredForTests = null;
        }

        Assert.Equal(2, raced.Count);
        Assert.True(aliveAtDelivery[false], "the entry hit was delivered for a probe already detached and reclaimable");
        Assert.True(aliveAtDelivery[true], "the return hit was delivered for a probe already detached and reclaimable");
        // Every reference the trap and the hijacked return took was dropped again.
        Probes.Domain.Barrier();
        Assert.All(raced.Values, p => Assert.Equal(0, p.ReferenceCount));
    }

    [Fact]
    public void DisposingALaunchedSessionEndsTheProgram()
    {
        var hits = new Collector();
        var session = PtraceUprobeSession.Launch([UprobeSpec.Parse($"{Targets["targets"]}:greet(str,i32)")], [Targets["targets"], "100000", "2", "1"], hits.Add, standardOutput: -1);
        Thread.Sleep(300);
        int pid = session.Pid;
        session.Dispose();
        Assert.NotEmpty(hits.Hits);
        Assert.Equal(128 + 9, session.ExitCode);
        Assert.False(Directory.Exists($"/proc/{pid}"));  // killed and reaped, not left a zombie
    }

    [Fact]
    public void TheCliLaunchesTracesAndReportsEveryHit()
    {
        string t = Targets["targets"];
        var (exitCode, lines, stderr) = NativeTargets.RunToEnd(["dotnet", Targets.Cli, "uprobe", "--backend", "ptrace", "--json",
            $"{t}:add6(i64,i64,i64,i64,i64,i64)", $"{t}:add6%return(i64)", "--", t, "30", "4"]);
        Assert.Equal(0, exitCode);
        // The program's own output goes to stderr; stdout is hits, then the summary.
        Assert.Equal(NativeTargets.RunToEnd(t, "30", "4"), stderr.Trim());
        Assert.Equal("{\"summary\":{\"events\":240,\"dropped\":0}}", lines[^1]);
        Assert.Equal(120, lines.Count(l => l.Contains("\"point\":\"entry\"")));
        Assert.Equal(120, lines.Count(l => l.Contains("\"point\":\"return\"")));
    }

    [Fact]
    public void WithoutPermissionForPerfTheCliFallsBackToPtrace()
    {
        // nobody may not open uprobe events (perf_event_paranoid), but may trace its own child.
        string t = Targets["targets"];
        var (exitCode, lines, stderr) = NativeTargets.RunToEnd([.. Targets.CliAsNobody(), "uprobe", "--json", $"{t}:greet(str,i32)", "--", t, "20", "2"]);
        Assert.True(exitCode == 0, stderr);
        Assert.Contains("the perf backend is unavailable", stderr);
        Assert.Contains("using ptrace", stderr);
        Assert.Equal("{\"summary\":{\"events\":40,\"dropped\":0}}", lines[^1]);
    }

    [Fact]
    public void ALaunchedProgramThatNeverMapsTheProbedBinaryIsReportedNotHung()
    {
        // The probes wait for an image that maps the binary (a wrapper may exec it later); if the
        // program ends without one, the CLI says so.
        var (exitCode, _, errors) = NativeTargets.RunToEnd(["dotnet", Targets.Cli, "uprobe", "--backend", "ptrace",
            $"{Targets["libcalc.so"]}:calc_mul(i32,i32)", "--", Targets["targets"], "3", "1"]);
        Assert.Equal(2, exitCode);
        Assert.Contains("never mapped", errors);
    }
}
