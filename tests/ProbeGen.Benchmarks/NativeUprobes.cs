using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Threading;
using ProbeGen.Uprobes;

namespace ProbeGen.Benchmarks;

/// <summary>
/// The native rows: the cost per hit of the perf backend against a bare counting uprobe on the
/// same function, and of the ptrace backend against a naive ptrace loop, in the same run. The target (samples/native/bench.c) times its own loop of
/// calls; each cost is the time per call with the probe minus the time without.
/// </summary>
internal static class NativeUprobes
{
    private const long Calls = 300_000;

    /// <summary>Fewer for ptrace: each hit costs microseconds of context switches.</summary>
    private const long PtraceCalls = 50_000;

    public static List<Row> Measure(string repositoryRoot)
    {
        string native = Path.Combine(repositoryRoot, "artifacts", "native");
        using (Process build = Process.Start("bash", [Path.Combine(repositoryRoot, "samples/native/build.sh"), native])!)
            build.WaitForExit();
        string bench = Path.Combine(native, "bench");
        ulong offset = ElfSymbols.ResolveOffset(bench, "hit");

        double baseline = Median(() => Run(bench, _ => null, out _));
        double bare = Median(() =>
        {
            int fd = -1;
            double ns = Run(bench, pid => { fd = PerfUprobeSession.OpenCounter(bench, offset, pid); return null; }, out _);
            long counted = PerfUprobeSession.ReadCount(fd);
            return counted == Calls ? ns : double.NaN;
        });
        long hits = 0, dropped = 0;
        double ours = Median(() =>
        {
            PerfUprobeSession? session = null;
            double ns = Run(bench, pid => session = PerfUprobeSession.Start([UprobeSpec.Parse($"{bench}:hit(i32)")], pid, _ => Interlocked.Increment(ref hits)), out _);
            Thread.Sleep(200);
            session!.Dispose();
            dropped += session.Dropped;
            return ns;
        });
        double oursCost = ours - baseline, bareCost = bare - baseline;
        var rows = new List<Row>();

        // ptrace: ours (int3 + out-of-line step, one stop per hit) against the naive loop (restore,
        // single-step in place, re-insert: two stops per hit), both launching the target.
        long ptraceHits = 0, naiveHits = 0;
        var spec = UprobeSpec.Parse($"{bench}:hit(i32)");
        double ptraceOurs = Median(() => RunLaunched(bench, PtraceCalls, (argv, stdout) =>
        {
            using var session = PtraceUprobeSession.Launch([spec], argv, _ => Interlocked.Increment(ref ptraceHits), stdout);
            session.WaitForEnd(Timeout.InfiniteTimeSpan);
        })) - baseline;
        double naive = Median(() => RunLaunched(bench, PtraceCalls, (argv, stdout) => naiveHits += NaivePtraceLoop.Run(bench, offset, argv, stdout, spin: false))) - baseline;
        double naiveSpinning = Median(() => RunLaunched(bench, PtraceCalls, (argv, stdout) => naiveHits += NaivePtraceLoop.Run(bench, offset, argv, stdout, spin: true))) - baseline;
        rows.Add(new Row("native_ptrace_hit_cost", ptraceOurs, "naive ptrace loop (restore, single-step, re-insert; blocking waitpid)", naive, ptraceOurs / naive,
            "faster than the naive loop", ptraceOurs < naive, 0, RatioOf: "ours ns per hit / naive ns per hit (each less the unprobed run)"));
        rows.Add(new Row("native_ptrace_vs_naive_same_wait", ptraceOurs, "the naive loop polling before it blocks, as ours does", naiveSpinning, ptraceOurs / naiveSpinning,
            "faster than the same loop waiting as ours does (out-of-line execution alone)", ptraceOurs < naiveSpinning, 0, RatioOf: "ours ns per hit / naive ns per hit (each less the unprobed run)"));
        rows.Add(new Row("native_ptrace_vs_perf", ptraceOurs, "our perf backend, same target", oursCost, ptraceOurs / oursCost,
            "informational (the price of the fallback)", null, 0, RatioOf: "ptrace ns per hit / perf ns per hit"));
        rows.Add(new Row("native_ptrace_hits_captured", 0, $"{ptraceHits / 3} of {PtraceCalls} calls captured per run (naive loops: {naiveHits / 6})", null, null,
            "every hit captured", ptraceHits == 3 * PtraceCalls && naiveHits == 6 * PtraceCalls, 0));

        // The tool a user would pick instead, when it is installed (Debian's bpftrace).
        if (File.Exists("/usr/bin/bpftrace"))
        {
            double bpfCount = Median(() => RunUnder("/usr/bin/bpftrace", ["-e", $"uprobe:{bench}:hit {{ @ = count(); }}", "-c", $"{bench} {Calls} 0"], stdout: true)) - baseline;
            string sink = Path.Combine(Path.GetTempPath(), "probegen-bpftrace.out");
            double bpfPrint = Median(() => RunUnder("/usr/bin/bpftrace", ["-o", sink, "-e", $"uprobe:{bench}:hit {{ printf(\"%d\\n\", arg0); }}", "-c", $"{bench} {Calls} 0"], stdout: true)) - baseline;
            File.Delete(sink);
            string cli = Path.Combine(repositoryRoot, "artifacts", "bin", "ProbeGen.Cli", new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Name, "probegen.dll");
            double oursStreaming = Median(() => RunUnder("dotnet", [cli, "uprobe", $"{bench}:hit(i32)", "--json", "--", bench, Calls.ToString(CultureInfo.InvariantCulture), "0"], stdout: false)) - baseline;
            rows.Add(new Row("native_perf_vs_bpftrace_count", oursCost, "bpftrace uprobe { @ = count() }", bpfCount, oursCost / bpfCount,
                "<= 1.1x bpftrace counting (ours also captures an argument)", oursCost / bpfCount <= 1.1, 0, RatioOf: "ours ns per hit / bpftrace ns per hit (each less the unprobed run)"));
            rows.Add(new Row("native_streaming_vs_bpftrace_printf", oursStreaming, "bpftrace uprobe { printf(...) } to a file", bpfPrint, oursStreaming / bpfPrint,
                "<= 1.0x bpftrace printf (ours: probegen uprobe --json)", oursStreaming / bpfPrint <= 1.0, 0, RatioOf: "ours ns per hit / bpftrace ns per hit (each less the unprobed run)"));
        }
        rows.AddRange(JumpRows(bench, native));
        rows.InsertRange(0,
        [
            new Row("native_perf_hit_cost", oursCost, "bare counting perf uprobe", bareCost, oursCost / bareCost,
                "<= 1.15x the bare counting uprobe", oursCost / bareCost <= 1.15, 0, RatioOf: "ours ns per hit / bare uprobe ns per hit (each less the unprobed run)"),
            new Row("native_perf_hits_captured", 0, $"{hits / 3} of {Calls} calls captured per run, {dropped / 3} dropped (counted)", null, null,
                "every hit captured or counted as dropped", hits + dropped == 3 * Calls, 0),
        ]);
        return rows;
    }

    /// <summary>Only the jump backend's rows (<c>--quick --jump</c>).</summary>
    public static List<Row> MeasureJump(string repositoryRoot)
    {
        string native = Path.Combine(repositoryRoot, "artifacts", "native");
        using (Process build = Process.Start("bash", [Path.Combine(repositoryRoot, "samples/native/build.sh"), native])!)
            build.WaitForExit();
        return JumpRows(Path.Combine(native, "bench"), native);
    }

    /// <summary>
    /// The jump backend on <c>hit_wide</c> (hit is too short for a 5-byte jump): its cost per hit
    /// against the bare counting uprobe on the same function and an unprobed call, and the hit rate
    /// it keeps from four threads with nothing dropped.
    /// </summary>
    private static List<Row> JumpRows(string bench, string native)
    {
        ulong offset = ElfSymbols.ResolveOffset(bench, "hit_wide");
        double baseline = Median(() => Run(bench, _ => null, out _, "wide"));
        double bare = Median(() =>
        {
            int fd = -1;
            double ns = Run(bench, pid => { fd = PerfUprobeSession.OpenCounter(bench, offset, pid); return null; }, out _, "wide");
            return PerfUprobeSession.ReadCount(fd) == Calls ? ns : double.NaN;
        });
        long hits = 0, dropped = 0;
        // Launched, as the ptrace rows are: a tracer that is also the target's parent would reap
        // the exit that the Process object of Run waits for.
        // Fewer calls than the ring holds: every hit takes the recording path, none the cheaper
        // full-ring one, whatever the drain keeps up with.
        const long JumpCalls = 60_000;
        double ours = Median(() => RunLaunched(bench, JumpCalls, (argv, stdout) =>
        {
            using var session = ProbeGen.Uprobes.Jump.JumpUprobeSession.Launch([UprobeSpec.Parse($"{bench}:hit_wide(i64)")], argv, _ => Interlocked.Increment(ref hits), stdout);
            session.WaitForEnd(Timeout.InfiniteTimeSpan);
            dropped += session.Dropped;
        }, "wide"));
        double oursCost = ours - baseline, bareCost = bare - baseline;

        // Four threads calling add6 as fast as they can, traced from their start.
        string targets = Path.Combine(native, "targets");
        const long PerThread = 500_000;
        long sustainedHits = 0;
        var clock = Stopwatch.StartNew();
        IUprobeSession four = ProbeGen.Uprobes.Jump.JumpUprobeSession.Launch([UprobeSpec.Parse($"{targets}:add6(i64,i64,i64,i64,i64,i64)")],
            [targets, PerThread.ToString(CultureInfo.InvariantCulture), "4"], _ => Interlocked.Increment(ref sustainedHits), standardOutput: -1);
        using (four)
            four.WaitForEnd(TimeSpan.FromMinutes(2));
        double seconds = clock.Elapsed.TotalSeconds;
        return
        [
            new Row("native_jump_hit_cost", oursCost, "bare counting perf uprobe, same function", bareCost, oursCost / bareCost,
                "<= 0.01x the bare counting uprobe", oursCost / bareCost <= 0.01 && hits == 3 * JumpCalls && dropped == 0, 0,
                RatioOf: "ours ns per hit / bare uprobe ns per hit (each less the unprobed run)",
                Detail: FormattableString.Invariant($"unprobed call {baseline:F2} ns; {hits / 3} of {JumpCalls} hits delivered per run, {dropped} dropped")),
            new Row("native_jump_sustained_4_threads", 1e9 * seconds / Math.Max(1, sustainedHits), FormattableString.Invariant($"{sustainedHits / seconds:F0} hits/s delivered, {four.Dropped} dropped"), null, null,
                "informational: unpaced, where drops are expected (the paced rows below carry the target)", sustainedHits + four.Dropped == 4 * PerThread ? null : false, 0,
                Detail: "launch to exit, 4 threads calling add6 in a loop, unpaced: four threads on two cores outrun any drainer, so this shows that every hit is delivered or counted as dropped, never lost; ns per hit includes the program's own work"),
            JumpSustainedRate.Measure(native, raw: false),
            JumpSustainedRate.Measure(native, raw: true),
        ];
    }

    /// <summary>Runs the target under a tracer that launches it; returns the target's ns per call from the tracer's output.</summary>
    private static double RunUnder(string tracer, string[] arguments, bool stdout)
    {
        var start = new ProcessStartInfo(tracer) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments)
            start.ArgumentList.Add(a);
        using Process process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        string text = stdout ? output : error.Result;
        foreach (string line in text.Split('\n'))
        {
            string[] parts = line.Trim().Split(' ');
            if (parts.Length == 2 && double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double ns) && long.TryParse(parts[1], out _))
                return ns;
        }
        return double.NaN;
    }

    /// <summary>Runs the target under an in-process launcher, its output to a file; returns its ns per call.</summary>
    private static double RunLaunched(string bench, long calls, Action<string[], int> launch, string? function = null)
    {
        string file = Path.Combine(Path.GetTempPath(), $"probegen-bench-{Environment.ProcessId}.out");
        using (Microsoft.Win32.SafeHandles.SafeFileHandle stdout = File.OpenHandle(file, FileMode.Create, FileAccess.Write))
            launch(function is null ? [bench, calls.ToString(CultureInfo.InvariantCulture), "0"] : [bench, calls.ToString(CultureInfo.InvariantCulture), "0", function], (int)stdout.DangerousGetHandle());
        string output = File.ReadAllText(file);
        File.Delete(file);
        return double.Parse(output.Split(' ')[0], CultureInfo.InvariantCulture);
    }

    private static double Median(Func<double> measure)
    {
        var samples = new List<double> { measure(), measure(), measure() };
        samples.Sort();
        return samples[1];
    }

    /// <summary>Starts the target, attaches during its start delay, returns its ns per call.</summary>
    private static double Run(string bench, Func<int, IDisposable?> attach, out string output, string? function = null)
    {
        var start = new ProcessStartInfo(bench) { RedirectStandardOutput = true };
        start.ArgumentList.Add(Calls.ToString(CultureInfo.InvariantCulture));
        start.ArgumentList.Add("300");
        if (function is not null)
            start.ArgumentList.Add(function);
        using Process target = Process.Start(start)!;
        using IDisposable? attached = attach(target.Id);
        output = target.StandardOutput.ReadToEnd();
        target.WaitForExit();
        return double.Parse(output.Split(' ')[0], CultureInfo.InvariantCulture);
    }
}
