using System;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>
/// What both backends must do on real gcc-built targets: exact counts and values, in launch mode
/// and attached to a running process. Each backend's class runs every test here.
/// </summary>
public abstract class BackendTests(NativeTargets targets)
{
    private const int Iterations = 50, Threads = 4;

    protected NativeTargets Targets { get; } = targets;

    /// <summary>Launches the target with the specs attached, its stdout to <paramref name="standardOutput"/>.</summary>
    protected abstract IUprobeSession LaunchSession(UprobeSpec[] specs, string[] command, Collector hits, int standardOutput);

    /// <summary>Attaches, launches the target as launch mode does, and collects until it exits.</summary>
    protected (Collector Hits, long Dropped, string Output) Launch(string[] specs, string file, params string[] arguments)
    {
        var hits = new Collector();
        string outputFile = System.IO.Path.Combine(Targets.Directory, $"stdout-{Guid.NewGuid():N}");
        IUprobeSession session;
        using (var stdout = System.IO.File.OpenHandle(outputFile, System.IO.FileMode.Create, System.IO.FileAccess.Write))
            session = LaunchSession(specs.Select(UprobeSpec.Parse).ToArray(), [file, .. arguments], hits, (int)stdout.DangerousGetHandle());
        using (session)
            Assert.True(session.WaitForEnd(TimeSpan.FromSeconds(60)));
        Assert.Equal(0, session.ExitCode);
        return (hits, session.Dropped, System.IO.File.ReadAllText(outputFile).Trim());
    }

    /// <summary>Attaches to a running process.</summary>
    protected abstract IUprobeSession Attach(string[] specs, int pid, Collector hits);

    /// <summary>Starts a target that is not our child (a tracer that is also the parent reaps its exit), and returns it with the target's pid.</summary>
    protected static (Process Shell, int Pid) StartUnowned(string file, params string[] arguments)
    {
        // bash prints the target's pid, then its output, and exits with its status.
        Process shell = NativeTargets.Start("bash", ["-c", "\"$0\" \"$@\" & echo $!; wait $!", file, .. arguments]);
        int pid = int.Parse(shell.StandardOutput.ReadLine()!);
        // Until it execs, the pid is a fork of bash: an attach then would not find the target's image.
        string target = System.IO.Path.GetFullPath(file);
        for (int i = 0; i < 30_000 && new System.IO.FileInfo($"/proc/{pid}/exe").LinkTarget != target && !shell.HasExited; i++)
            Thread.Sleep(1);
        return (shell, pid);
    }

    [Fact]
    public void AThrowingConsumerIsContainedCountedAndReported()
    {
        string t = Targets["targets"];
        var fault = new InvalidOperationException("consumer fault");
        var hits = new Collector { Fault = fault };
        IUprobeSession session = LaunchSession([UprobeSpec.Parse($"{t}:greet(str,i32)")], [t, "20", "2"], hits, standardOutput: -1);
        using (session)
            Assert.True(session.WaitForEnd(TimeSpan.FromSeconds(60)));

        // Every hit reached the consumer and every one threw; the process and the trace went on.
        Assert.Equal(0, session.ExitCode);
        Assert.Equal(40, hits.Of("greet").Count);
        Assert.Equal(40, session.Hits);
        Assert.Equal(40, session.FaultCount);
        Assert.Same(fault, session.LastFault);
    }

    [Fact]
    public void ExactCountsAndValuesOfEveryWidthFromFourThreads()
    {
        string t = Targets["targets"];
        var (hits, dropped, output) = Launch(
            [$"{t}:add6(i64,i64,i64,i64,i64,i64)", $"{t}:add6%return(i64)", $"{t}:greet(str,i32)", $"{t}:widths(i8,i16,u8,u16,i32,u64)"],
            t, Iterations.ToString(), Threads.ToString(), "0", "300");
        Assert.Equal(NativeTargets.RunToEnd(t, Iterations.ToString(), Threads.ToString()), output);
        Assert.Equal(0, dropped);

        var add6 = hits.Of("add6");
        Assert.Equal(Iterations * Threads, add6.Count);
        Assert.Equal(Threads, add6.Select(h => h.Tid).Distinct().Count());
        // add6(i, 1, 2, 3, 4, thread id): every (i, id) pair exactly once.
        Assert.Equal(
            Enumerable.Range(0, Threads).SelectMany(id => Enumerable.Range(0, Iterations).Select(i => $"{i},1,2,3,4,{id}")).Order(),
            add6.Select(h => string.Join(",", h.Values)).Order());

        var returns = hits.Of("add6", isReturn: true);
        Assert.Equal(Iterations * Threads, returns.Count);
        Assert.Equal(
            add6.Select(h => h.Values.Cast<long>().Sum()).Order(),
            returns.Select(h => (long)h.Values[0]!).Order());

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
        string lib = Targets["libcalc.so"];
        var (hits, _, output) = Launch([$"{lib}:calc_mul(i32,i32)", $"{lib}:calc_mul%return(i32)"], Targets["uselib"], "100");
        Assert.Equal("total 14850", output);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"{i},3"), hits.Of("calc_mul").Select(h => string.Join(",", h.Values)));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (long)i * 3), hits.Of("calc_mul", isReturn: true).Select(h => (long)h.Values[0]!));
    }

    [Fact]
    public void ANonPieExecutable()
    {
        string t = Targets["targets-nopie"];
        var (hits, _, _) = Launch([$"{t}:add6%return(i64)"], t, "25", "2");
        Assert.Equal(50, hits.Of("add6", isReturn: true).Count);
    }

    [Fact]
    public void AnOffsetSpecProbesTheSameInstruction()
    {
        string t = Targets["targets"];
        ulong offset = ElfSymbols.ResolveOffset(t, "add6");
        var (hits, _, _) = Launch([$"{t}:0x{offset:x}(i64)"], t, "10", "1");
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), hits.Hits.Select(h => (long)h.Values[0]!).Order());
    }

    [Fact]
    public void ReturnsThroughRecursionLongjmpForkAndVfork()
    {
        string n = Targets["nested"];
        const int rounds = 4;
        var (hits, dropped, output) = Launch(
            [$"{n}:fact(i64)", $"{n}:fact%return(i64)", $"{n}:bail(i32)", $"{n}:bail%return(i32)", $"{n}:nap%return(i32)", $"{n}:spawn_child", $"{n}:spawn_child%return(i32)"],
            n, rounds.ToString(), "1");
        // The program checks its forked children itself: a child returning through a breakpoint
        // or trampoline it inherited would crash, and it would exit 3.
        Assert.Equal(NativeTargets.RunToEnd(n, rounds.ToString(), "1"), output);
        Assert.Equal(0, dropped);
        // fact(10) then fact(3) each round: 13 calls, 13 returns, every value exact, innermost first.
        Assert.Equal(rounds * 13, hits.Of("fact").Count);
        long[] factorials = [1, 2, 6, 24, 120, 720, 5040, 40320, 362880, 3628800, 1, 2, 6];
        Assert.Equal(Enumerable.Repeat(factorials, rounds).SelectMany(f => f), hits.Of("fact", isReturn: true).Select(h => (long)h.Values[0]!));
        // bail(3) recurses to bail(0), which longjmps out: four entries, no return.
        Assert.Equal(Enumerable.Repeat(new long[] { 3, 2, 1, 0 }, rounds).SelectMany(b => b), hits.Of("bail").Select(h => (long)h.Values[0]!));
        Assert.Empty(hits.Of("bail", isReturn: true));
        Assert.Equal(Enumerable.Repeat(1L, rounds), hits.Of("nap", isReturn: true).Select(h => (long)h.Values[0]!));
        // Only the traced process's returns count: each is the child's pid, never the child's 0.
        Assert.All(hits.Of("spawn_child"), h => Assert.Empty(h.Values));  // a spec with no types: the hit alone
        Assert.Equal(rounds, hits.Of("spawn_child").Count);
        var spawned = hits.Of("spawn_child", isReturn: true);
        Assert.Equal(rounds, spawned.Count);
        Assert.All(spawned, h => Assert.True((long)h.Values[0]! > 0));
    }

    [Fact]
    public void StringsAsTheyWereAtTheHitInAProgramThatExitsRightAway()
    {
        string s = Targets["strings"];
        const int iterations = 300;
        var (hits, dropped, output) = Launch([$"{s}:label(str,i32)", $"{s}:label%return(i64)"], s, iterations.ToString());
        Assert.Equal(NativeTargets.RunToEnd(s, iterations.ToString()), output);
        Assert.Equal(0, dropped);
        var labels = hits.Of("label");
        Assert.Equal(iterations * 4 * 3, labels.Count);
        // A stack buffer rewritten before every call: each value exactly once, as it was at the hit.
        Assert.Equal(
            Enumerable.Range(0, 4).SelectMany(id => Enumerable.Range(0, iterations).Select(i => $"t{id}-{i}/{i}")).Order(),
            labels.Where(h => (long)h.Values[1]! < 1000000).Select(h => $"{h.Values[0]}/{h.Values[1]}").Order());
        // A literal, and a heap string each thread keeps until its last call.
        Assert.All(labels.Where(h => (long)h.Values[1]! is >= 1000000 and < 2000000), h => Assert.Equal("constant", h.Values[0]));
        var heap = labels.Where(h => (long)h.Values[1]! >= 2000000).ToList();
        Assert.Equal(iterations * 4, heap.Count);
        Assert.Equal(4, heap.Select(h => (string?)h.Values[0]).Distinct().Count());
        Assert.All(heap, h => Assert.StartsWith("heap-", (string?)h.Values[0]));
        Assert.Equal(iterations * 4 * 3, hits.Of("label", isReturn: true).Count);
    }

    [Fact]
    public void AHeapStringFreedRightAfterTheCallReadsAsItWasAtTheHit()
    {
        string s = Targets["strings"];
        var (hits, dropped, _) = Launch([$"{s}:transient(str,i32)"], s, "200");
        Assert.Equal(0, dropped);
        Assert.Equal(
            Enumerable.Range(0, 4).SelectMany(id => Enumerable.Range(0, 200).Select(i => $"tmp{id}-{i}/{i}")).Order(),
            hits.Of("transient").Select(h => $"{h.Values[0]}/{h.Values[1]}").Order());
    }

    [Fact]
    public void AWrapperThatExecsTheProgram()
    {
        // env execs the program: the probes are in the program, not in env.
        string t = Targets["targets"];
        var (hits, _, output) = Launch([$"{t}:add6%return(i64)", $"{t}:greet(str,i32)"], "env", "PROBEGEN_TEST=1", t, "20", "2");
        Assert.Equal(NativeTargets.RunToEnd(t, "20", "2"), output);
        Assert.Equal(40, hits.Of("add6", isReturn: true).Count);
        Assert.Equal(40, hits.Of("greet").Count);
    }

    [Fact]
    public void ProbesOnAdjacentInstructionsBothFire()
    {
        // Two sites less than a word apart: planting or restoring one must not undo the other.
        string t = Targets["targets"];
        ulong offset = ElfSymbols.ResolveOffset(t, "widths");
        byte[] code = new byte[16];
        using (var file = System.IO.File.OpenRead(t))
        {
            file.Position = (long)offset;
            file.ReadExactly(code);
        }
        var decoder = Iced.Intel.Decoder.Create(64, new Iced.Intel.ByteArrayCodeReader(code));
        decoder.Decode(out Iced.Intel.Instruction first);
        Assert.True(first.Length < 8);
        var (hits, _, output) = Launch([$"{t}:0x{offset + (ulong)first.Length:x}(i16)", $"{t}:0x{offset:x}(i8)"], t, "10", "2");  // the later one first
        Assert.Equal(NativeTargets.RunToEnd(t, "10", "2"), output);
        Assert.Equal(20, hits.Hits.Count(h => h.Spec.Offset == offset));
        Assert.Equal(20, hits.Hits.Count(h => h.Spec.Offset == offset + (ulong)first.Length));
    }

    [Fact]
    public void DetachingFromAProgramThatBlocksEverySignalIsPrompt()
    {
        string b = Targets["blocked"];
        var (shell, pid) = StartUnowned(b, "100", "50");  // runs 5 s, longer than Dispose may take
        using Process target = shell;
        Thread.Sleep(200);
        // Nothing is hit, so nothing from the program wakes a tracer waiting for it, and a signal
        // to the program would stay blocked: Dispose has to wake the tracer some other way.
        var hits = new Collector();
        IUprobeSession session = Attach([$"{b}:never_called(i32)"], pid, hits);
        Thread.Sleep(300);
        var detach = System.Threading.Tasks.Task.Run(session.Dispose);
        Assert.True(detach.Wait(TimeSpan.FromSeconds(3)), "Dispose hung");
        Assert.Empty(hits.Hits);
        string output = target.StandardOutput.ReadToEnd();
        Assert.True(target.WaitForExit(60_000));
        Assert.Equal(0, target.ExitCode);
        Assert.Equal(NativeTargets.RunToEnd(b, "100", "0"), output.Trim());
    }

    [Fact]
    public void AttachToARunningProcessAndDetachCleanly()
    {
        string t = Targets["targets"];
        string expected = NativeTargets.RunToEnd(t, "400", "2", "2");
        var (shell, pid) = StartUnowned(t, "400", "2", "2");
        using (shell)
        {
            Thread.Sleep(200);
            var hits = new Collector();
            using (Attach([$"{t}:greet(str,i32)", $"{t}:add6%return(i64)"], pid, hits))
                Thread.Sleep(500);
            Assert.NotEmpty(hits.Of("greet"));
            Assert.NotEmpty(hits.Of("add6", isReturn: true));
            Assert.All(hits.Hits, h => Assert.Equal(pid, h.Pid));
            int afterDetach = hits.Hits.Count;
            // Detached: the target runs on unprobed and gets the right answer.
            string output = shell.StandardOutput.ReadToEnd();
            Assert.True(shell.WaitForExit(60_000));
            Assert.Equal(0, shell.ExitCode);
            Assert.Equal(expected, output.Trim());
            Assert.Equal(afterDetach, hits.Hits.Count);
        }
    }
}
