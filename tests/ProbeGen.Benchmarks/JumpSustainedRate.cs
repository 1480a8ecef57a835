using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using ProbeGen.Uprobes;
using ProbeGen.Uprobes.Jump;

namespace ProbeGen.Benchmarks;

/// <summary>
/// The jump backend's row for "the highest hit rate it sustains from 4 threads with 0 drops": the
/// paced target (samples/native/paced.c) runs at rates doubling from 250k hits/s, then bisected
/// twice between the last clean rate and the first one that was not; the highest clean rate is
/// run once more, and if that run is not clean, the next lower clean rate (three at most): the
/// reported rate is the highest that was clean twice. A run is clean when nothing was dropped, every call was
/// delivered, and the target itself kept the rate (a run whose target could not keep up, probed,
/// did not sustain it either).
/// </summary>
internal static class JumpSustainedRate
{
    public const string Name = "native_jump_sustained_no_drop_4_threads";

    /// <summary>The same with the consumer that takes each hit in place (RawUprobeHit): nothing allocated per hit.</summary>
    public const string RawName = "native_jump_sustained_no_drop_4_threads_raw";

    private const double Seconds = 1;
    private const int Threads = 4;
    private const double FirstRate = 250_000, LastRate = 128_000_000;

    /// <summary>One run at a rate: what the target made, what arrived, what was dropped.</summary>
    private readonly record struct Run(double Rate, long Calls, double Achieved, long Delivered, long Dropped)
    {
        public bool Clean => Dropped == 0 && Delivered == Calls && Achieved >= 0.97 * Rate;

        public string Why => Dropped != 0 ? FormattableString.Invariant($"{Dropped} dropped")
            : Delivered != Calls ? FormattableString.Invariant($"{Delivered} of {Calls} delivered")
            : FormattableString.Invariant($"the probed target made only {Achieved:F0} calls/s");
    }

    /// <summary>The row for the consumer of decoded hits (<paramref name="raw"/> false), or of hits read in place.</summary>
    public static Row Measure(string native, bool raw)
    {
        string paced = Path.Combine(native, "paced");
        var spec = UprobeSpec.Parse($"{paced}:paced_hit(i64)");
        var runs = new List<Run>();
        Run? best = null, failed = null;
        for (double rate = FirstRate; rate <= LastRate; rate *= 2)
        {
            Run run = RunAt(paced, spec, rate, raw);
            runs.Add(run);
            if (!run.Clean)
            {
                failed = run;
                break;
            }
            best = run;
        }
        for (int step = 0; step < 2 && best is { } low && failed is { } high; step++)
        {
            Run run = RunAt(paced, spec, Math.Round((low.Rate + high.Rate) / 2 / 1000) * 1000, raw);
            runs.Add(run);
            if (run.Clean)
                best = run;
            else
                failed = run;
        }
        // The reported rate must be clean twice: the highest clean rate is run again, and if that
        // run is not clean, the next lower clean one, three at most.
        Run? confirm = null;
        var confirmations = new List<string>();
        foreach (Run candidate in runs.FindAll(r => r.Clean).OrderByDescending(r => r.Rate).Take(3))
        {
            confirm = RunAt(paced, spec, candidate.Rate, raw);
            confirmations.Add(FormattableString.Invariant($"{candidate.Rate / 1e6:0.###}M: {(confirm.Value.Clean ? "clean" : confirm.Value.Why)}"));
            best = candidate;
            if (confirm.Value.Clean)
                break;
        }
        string steps = string.Join("; ", runs.ConvertAll(r => FormattableString.Invariant($"{r.Rate / 1e6:0.###}M: {(r.Clean ? "clean" : r.Why)}")));
        return new Row(raw ? RawName : Name, best is { } found ? 1e9 / found.Rate : double.NaN,
            best is { } sustained
                ? FormattableString.Invariant($"{sustained.Rate:F0} hits/s from {Threads} threads, 0 dropped")
                : $"no rate from {FirstRate:F0} hits/s was clean",
            null, null,
            "0 drops at the reported sustained rate from 4 threads (checked by a second run at that rate)",
            confirm?.Clean ?? false, 0,
            Detail: FormattableString.Invariant($"ns = 1e9 / the rate; paced target, 4 threads, {Seconds:F0} s per run, each hit delivered {(raw ? "in place (RawUprobeHit, nothing allocated)" : "as a UprobeHit")} to a counting consumer; ")
                + $"steps: {steps}; first failure: {failed?.Why ?? "none up to the last rate"}; confirmed by a second run: {(confirmations.Count > 0 ? string.Join("; ", confirmations) : "none clean")}");
    }

    private static Run RunAt(string paced, UprobeSpec spec, double rate, bool raw)
    {
        string file = Path.Combine(Path.GetTempPath(), $"probegen-paced-{Environment.ProcessId}.out");
        long delivered = 0, dropped;
        using (Microsoft.Win32.SafeHandles.SafeFileHandle stdout = File.OpenHandle(file, FileMode.Create, FileAccess.Write))
        {
            string[] command = [paced, rate.ToString("F0", CultureInfo.InvariantCulture), Seconds.ToString(CultureInfo.InvariantCulture), Threads.ToString(CultureInfo.InvariantCulture)];
            using JumpUprobeSession session = raw
                ? JumpUprobeSession.Launch([spec], command, (in RawUprobeHit _) => Interlocked.Increment(ref delivered), (int)stdout.DangerousGetHandle())
                : JumpUprobeSession.Launch([spec], command, _ => Interlocked.Increment(ref delivered), (int)stdout.DangerousGetHandle());
            session.WaitForEnd(TimeSpan.FromMinutes(1));
            session.Dispose();
            dropped = session.Dropped;
        }
        string[] output = File.ReadAllText(file).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        File.Delete(file);
        return output.Length == 2
            ? new Run(rate, long.Parse(output[0], CultureInfo.InvariantCulture), double.Parse(output[1], CultureInfo.InvariantCulture), Interlocked.Read(ref delivered), dropped)
            : new Run(rate, -1, 0, Interlocked.Read(ref delivered), dropped);
    }
}
