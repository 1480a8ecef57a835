using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using ProbeGen.Uprobes.Jump;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>
/// The trap-free backend on real gcc-built targets and a real system binary: the backend
/// contract's checks for entry probes (exact counts and values from four threads, a shared library,
/// a non-PIE executable, attach and detach with the target's result checked, a killed tracer), its
/// refusals, and libc's malloc and free under sort, counted the same as by the perf backend.
/// </summary>
public class JumpBackendTests(NativeTargets targets) : IClassFixture<NativeTargets>
{
    private const int Iterations = 200, Threads = 4;

    private (Collector Hits, IUprobeSession Session, string Output) Launch(string[] specs, string file, params string[] arguments)
    {
        var hits = new Collector();
        string outputFile = Path.Combine(targets.Directory, $"stdout-{Guid.NewGuid():N}");
        IUprobeSession session;
        using (var stdout = File.OpenHandle(outputFile, FileMode.Create, FileAccess.Write))
            session = JumpUprobeSession.Launch(specs.Select(UprobeSpec.Parse), [file, .. arguments], hits.Add, (int)stdout.DangerousGetHandle());
        using (session)
            Assert.True(session.WaitForEnd(TimeSpan.FromSeconds(60)));
        Assert.Null(session.Failure);
        Assert.Equal(0, session.ExitCode);
        return (hits, session, File.ReadAllText(outputFile).Trim());
    }

    [Fact]
    public void ExactCountsAndValuesOfSixRegistersStringsAndEveryWidthFromFourThreads()
    {
        string t = targets["targets"];
        var (hits, session, output) = Launch(
            [$"{t}:add6(i64,i64,i64,i64,i64,i64)", $"{t}:greet(str,i32)", $"{t}:widths(i8,i16,u8,u16,i32,u64)"],
            t, Iterations.ToString(), Threads.ToString(), "0", "300");
        Assert.Equal(NativeTargets.RunToEnd(t, Iterations.ToString(), Threads.ToString()), output);
        Assert.Equal(UprobeBackend.Jump, session.Backend);
        Assert.Equal(0, session.Dropped);

        var add6 = hits.Of("add6");
        Assert.Equal(Threads, add6.Select(h => h.Tid).Distinct().Count());
        Assert.Equal(
            Enumerable.Range(0, Threads).SelectMany(id => Enumerable.Range(0, Iterations).Select(i => $"{i},1,2,3,4,{id}")).Order(),
            add6.Select(h => string.Join(",", h.Values)).Order());
        var greet = hits.Of("greet");
        Assert.Equal(Iterations * Threads / 2, greet.Count(h => (string?)h.Values[0] == "probe"));
        Assert.Equal(Iterations * Threads / 2, greet.Count(h => (string?)h.Values[0] == "gen"));
        Assert.All(greet, h => Assert.Equal(2L, h.Values[1]));
        var widths = hits.Of("widths");
        Assert.Equal(Iterations * Threads, widths.Count);
        Assert.All(widths, h => Assert.Equal(new object?[] { -5L, -300L, 200UL, 60000UL, -70000L, 0x1234567890abcdefUL }, h.Values));
        // Each thread's hits carry its own time stamps, in order, within the run.
        long now = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
        Assert.All(add6, h => Assert.InRange(h.TimestampNs, now - 60_000_000_000, now));
    }

    [Fact]
    public void ARawConsumerTakesEveryHitInPlaceWithItsRegistersAndString()
    {
        string t = Targets();
        long count = 0, firstArguments = 0, lastArguments = 0, probes = 0, gens = 0;
        var threads = new System.Collections.Generic.HashSet<int>();
        void OnRawHit(in RawUprobeHit hit)
        {
            // The drain delivers one hit at a time: plain updates are safe here.
            if (hit.Spec.Symbol == "add6")
            {
                count++;
                firstArguments += (long)hit.Registers[0];
                lastArguments += (long)hit.Registers[5];
                threads.Add(hit.Tid);
            }
            else if (hit.Text.SequenceEqual("probe"u8))
                probes++;
            else if (hit.Text.SequenceEqual("gen"u8))
                gens++;
        }
        using (var session = JumpUprobeSession.Launch([UprobeSpec.Parse($"{t}:add6(i64,i64,i64,i64,i64,i64)"), UprobeSpec.Parse($"{t}:greet(str,i32)")],
            [t, Iterations.ToString(), Threads.ToString()], OnRawHit, standardOutput: -1))
        {
            Assert.True(session.WaitForEnd(TimeSpan.FromSeconds(60)));
            session.Dispose();
            Assert.Equal(0, session.ExitCode);
            Assert.Equal(0, session.Dropped);
            Assert.Equal(2L * Iterations * Threads, session.Hits);
        }
        Assert.Equal(Iterations * Threads, count);
        Assert.Equal((long)Threads * Iterations * (Iterations - 1) / 2, firstArguments);  // i = 0 .. Iterations-1 on each thread
        Assert.Equal((long)Iterations * Threads * (Threads - 1) / 2, lastArguments);      // the thread's id, 0 .. Threads-1
        Assert.Equal(Threads, threads.Count);
        Assert.Equal(Iterations * Threads / 2, probes);
        Assert.Equal(Iterations * Threads / 2, gens);
    }

    private string Targets() => targets["targets"];

    [Fact]
    public void ASharedLibraryAndANonPieExecutable()
    {
        string lib = targets["libcalc.so"];
        var (hits, _, output) = Launch([$"{lib}:calc_mul(i32,i32)"], targets["uselib"], "100");
        Assert.Equal("total 14850", output);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"{i},3"), hits.Of("calc_mul").Select(h => string.Join(",", h.Values)));

        string nopie = targets["targets-nopie"];
        var (nopieHits, _, _) = Launch([$"{nopie}:add6(i64)"], nopie, "25", "2");
        Assert.Equal(50, nopieHits.Of("add6").Count);
    }

    [Fact]
    public void AttachToARunningProcessAndDetachCleanly()
    {
        string t = targets["targets"];
        string expected = NativeTargets.RunToEnd(t, "400", "2", "2");
        using Process target = NativeTargets.Start(t, "400", "2", "2");
        Thread.Sleep(200);
        var hits = new Collector();
        var before = File.ReadAllLines($"/proc/{target.Id}/maps").ToHashSet();
        string[] added;
        using (JumpUprobeSession.Start([UprobeSpec.Parse($"{t}:greet(str,i32)"), UprobeSpec.Parse($"{t}:add6(i64,i64,i64,i64,i64,i64)")], target.Id, hits.Add))
        {
            Thread.Sleep(500);
            // The ring is one memfd, mapped shared by the target and by this process (the tracer).
            Assert.Single(RingMappings(target.Id), m => m.Contains(" rw-s "));
            Assert.Single(RingMappings(Environment.ProcessId), m => m.Contains(" rw-s "));
            added = File.ReadAllLines($"/proc/{target.Id}/maps").Where(l => !before.Contains(l)).ToArray();
        }
        // The session mapped a trampoline area (read and execute, no file) and the ring; the detach unmapped both.
        Assert.Contains(added, l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, "r-xp", _, _, "0"]);
        Assert.Contains(added, l => l.Contains("/memfd:" + JumpRingMemory.Name, StringComparison.Ordinal));
        Assert.Empty(File.ReadAllLines($"/proc/{target.Id}/maps").Intersect(added));
        Assert.Empty(RingMappings(Environment.ProcessId));
        Assert.NotEmpty(hits.Of("greet"));
        Assert.All(hits.Of("add6"), h => Assert.Equal(new object?[] { h.Values[0], 1L, 2L, 3L, 4L, h.Values[5] }, h.Values));
        Assert.All(hits.Hits, h => Assert.Equal(target.Id, h.Pid));
        int afterDetach = hits.Hits.Count;
        // Every byte restored: the target runs on unprobed and gets the right answer.
        string output = target.StandardOutput.ReadToEnd();
        Assert.True(target.WaitForExit(60_000));
        Assert.Equal(0, target.ExitCode);
        Assert.Equal(expected, output.Trim());
        Assert.Equal(afterDetach, hits.Hits.Count);
    }

    [Fact]
    public void AThreadSpinningInsideThePatchedBytesIsSteppedOut()
    {
        string parked = targets["parked"];
        using Process target = NativeTargets.Start(parked, "spin", "3");
        Assert.Equal("ready", target.StandardOutput.ReadLine());
        // The spinner's loop is spin_entry's first bytes: most stops find it inside them. Attach
        // until one did (each attach patches, records, and restores).
        var hits = new Collector();
        int steppedOut = 0, attaches = 0;
        for (; attaches < 20 && steppedOut == 0; attaches++)
        {
            using var session = JumpUprobeSession.Start([UprobeSpec.Parse($"{parked}:spin_entry")], target.Id, hits.Add);
            Thread.Sleep(20);
            steppedOut += session.ThreadsSteppedOut;
        }
        Assert.True(steppedOut > 0, $"no attach out of {attaches} found the spinner inside the patched bytes");
        Assert.NotEmpty(hits.Of("spin_entry"));  // every turn of the loop goes through the jump
        AssertFinishesOk(target);
    }

    [Fact]
    public void AThreadInASystemCallThatRestartsInsideThePatchedBytesIsRefused()
    {
        string parked = targets["parked"];
        using Process target = NativeTargets.Start(parked, "syscall", "1.5");
        Assert.Equal("ready", target.StandardOutput.ReadLine());
        Thread.Sleep(100);  // in nanosleep, whose restart rewinds rip to park's bytes 4-5
        var refusal = Assert.Throws<UprobeException>(() => JumpUprobeSession.Start([UprobeSpec.Parse($"{parked}:park")], target.Id, _ => { }));
        Assert.Contains($"thread {target.Id} is in a system call that returns inside the bytes the jump would replace", refusal.Message);
        Assert.DoesNotContain('\n', refusal.Message);
        Assert.Empty(RingMappings(target.Id));  // refused before anything was mapped
        AssertFinishesOk(target);
    }

    [Fact]
    public void ASignalFrameThatWouldReturnInsideThePatchedBytesIsRefused()
    {
        string parked = targets["parked"];
        using Process target = NativeTargets.Start(parked, "signal", "1.5");
        // In the SIGSEGV handler of a fault at faulty's byte 1: the frame's saved rip points there.
        Assert.Equal("ready", target.StandardOutput.ReadLine());
        ulong entry = ElfSymbols.ResolveOffset(parked, "faulty");
        var refusal = Assert.Throws<UprobeException>(() => JumpUprobeSession.Start([UprobeSpec.Parse($"{parked}:faulty")], target.Id, _ => { }));
        Assert.Contains($"thread {target.Id} has 0x", refusal.Message);
        Assert.Contains("inside the bytes the jump would replace, on its stack at", refusal.Message);
        Assert.DoesNotContain('\n', refusal.Message);
        // The value named is faulty's entry + 1, wherever the executable is loaded.
        ulong named = Convert.ToUInt64(refusal.Message.Split("has 0x")[1].Split(',')[0], 16);
        Assert.Equal((entry + 1) & 0xFFF, named & 0xFFF);
        Assert.Empty(RingMappings(target.Id));
        AssertFinishesOk(target);
    }

    /// <summary>The lines of a process's memory map that map a jump ring.</summary>
    /// <summary>The parked target ran on unharmed: it printed ok and exited 0.</summary>
    private static void AssertFinishesOk(Process target)
    {
        Assert.Equal("ok", target.StandardOutput.ReadToEnd().Trim());
        Assert.True(target.WaitForExit(60_000));
        Assert.Equal(0, target.ExitCode);
    }

    private static string[] RingMappings(int pid) =>
        File.ReadLines($"/proc/{pid}/maps").Where(l => l.Contains("/memfd:" + JumpRingMemory.Name, StringComparison.Ordinal)).ToArray();

    [Fact]
    public void KillingTheTracerLeavesTheTargetCorrect()
    {
        string t = targets["targets"];
        string expected = NativeTargets.RunToEnd(t, "1500", "2", "2");
        using Process target = NativeTargets.Start(t, "1500", "2", "2");
        using Process tracer = NativeTargets.Start("dotnet", targets.Cli, "uprobe", $"{t}:greet(str,i32)", "-p", target.Id.ToString(), "--json", "--backend", "jump");
        Assert.NotNull(tracer.StandardOutput.ReadLine());  // patched: a first hit
        tracer.Kill();  // SIGKILL: the jumps stay, the trampolines go on filling the ring, then count drops
        Assert.True(tracer.WaitForExit(10_000));
        // The next session finds the jump the killed one left, undoes it, and puts its own in.
        var hits = new Collector();
        Assert.Single(RingMappings(target.Id));  // the killed session's
        using (var next = JumpUprobeSession.Start([UprobeSpec.Parse($"{t}:greet(str,i32)")], target.Id, hits.Add))
        {
            Assert.Equal(1, next.LeftoversRemoved);
            Thread.Sleep(100);
            // The killed session's ring was unmapped with its jump undone: the one left is this session's.
            Assert.Single(RingMappings(target.Id));
            Assert.Single(RingMappings(Environment.ProcessId));
        }
        Assert.Empty(RingMappings(target.Id));
        Assert.NotEmpty(hits.Of("greet"));
        Assert.All(hits.Of("greet"), h => Assert.Contains((string?)h.Values[0], new[] { "probe", "gen" }));
        string output = target.StandardOutput.ReadToEnd();
        Assert.True(target.WaitForExit(60_000));
        Assert.Equal(0, target.ExitCode);
        Assert.Equal(expected, output.Trim());
    }

    [Fact]
    public void TheCliSaysOnceThatItRemovedWhatAKilledTracerLeft()
    {
        string t = targets["targets"];
        string expected = NativeTargets.RunToEnd(t, "1500", "2", "2");
        using Process target = NativeTargets.Start(t, "1500", "2", "2");
        string[] cli = ["dotnet", targets.Cli, "uprobe", $"{t}:greet(str,i32)", "-p", target.Id.ToString(), "--json", "--backend", "jump"];
        using (Process killed = NativeTargets.Start(cli[0], cli[1..]))
        {
            Assert.NotNull(killed.StandardOutput.ReadLine());  // patched: a first hit
            killed.Kill();
            Assert.True(killed.WaitForExit(10_000));
        }
        var (exitCode, lines, errors) = NativeTargets.RunToEnd([.. cli, "--duration", "300ms"]);
        Assert.Equal(0, exitCode);
        string[] said = errors.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(said, l => l == $"probegen: removed 1 probe(s) left in process {target.Id} by an earlier probegen uprobe that was killed");
        Assert.Contains(lines, l => l.Contains("\"args\":[\"", StringComparison.Ordinal));  // and it traced
        // A third tracer finds nothing left: the second one detached cleanly.
        var (_, _, third) = NativeTargets.RunToEnd([.. cli, "--duration", "100ms"]);
        Assert.DoesNotContain("removed", third);
        Assert.Equal(expected, target.StandardOutput.ReadToEnd().Trim());
        Assert.True(target.WaitForExit(60_000));
        Assert.Equal(0, target.ExitCode);
    }

    [Fact]
    public void RefusalsSayWhyBeforeAnythingIsTouched()
    {
        string t = targets["targets"];
        string[] command = [t, "1", "1"];
        Assert.Contains("entry probes only", Assert.Throws<UprobeException>(() => JumpUprobeSession.Launch([UprobeSpec.Parse($"{t}:add6%return(i64)")], command, _ => { })).Message);
        Assert.Contains("needs a function name", Assert.Throws<UprobeException>(() => JumpUprobeSession.Launch([UprobeSpec.Parse($"{t}:0x{ElfSymbols.ResolveOffset(t, "add6"):x}")], command, _ => { })).Message);
        Assert.Contains("one string per hit", Assert.Throws<UprobeException>(() => JumpUprobeSession.Launch([UprobeSpec.Parse($"{t}:greet(str,str)")], command, _ => { })).Message);
    }

    [Fact]
    public void MallocAndFreeOfLibcUnderSortCountTheSameAsThePerfBackend()
    {
        string libc = File.ReadLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(f => f.Length >= 6)
            .Select(f => f[5]).First(p => Path.GetFileName(p).StartsWith("libc.so", StringComparison.Ordinal));
        string input = Path.Combine(targets.Directory, "sort.in");
        File.WriteAllLines(input, Enumerable.Range(0, 20_000).Select(i => ((i * 7919L) % 20_011).ToString()));
        (long Mallocs, long Bytes, long Frees) Count(Func<UprobeSpec[], string[], Action<UprobeHit>, IUprobeSession> launch)
        {
            var hits = new Collector();
            using (IUprobeSession session = launch([UprobeSpec.Parse($"{libc}:malloc(u64)"), UprobeSpec.Parse($"{libc}:free(ptr)")], ["/usr/bin/sort", input, "-o", input + ".out"], hits.Add))
            {
                Assert.True(session.WaitForEnd(TimeSpan.FromSeconds(60)));
                Assert.Equal(0, session.ExitCode);
                Assert.Equal(0, session.Dropped);
            }
            var mallocs = hits.Of("malloc");
            return (mallocs.Count, mallocs.Sum(h => (long)(ulong)h.Values[0]!), hits.Of("free").Count);
        }
        var jump = Count((specs, command, onHit) => JumpUprobeSession.Launch(specs, command, onHit));
        var perf = Count((specs, command, onHit) => PerfUprobeSession.Launch(specs, command, onHit));
        Assert.True(jump.Mallocs > 10, $"{jump.Mallocs} mallocs");
        Assert.Equal(perf, jump);
    }
}
