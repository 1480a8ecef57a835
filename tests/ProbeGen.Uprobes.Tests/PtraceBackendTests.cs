using System.Diagnostics;
using System.Linq;
using System.Threading;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>
/// The ptrace backend: int3 written by the engine, the displaced instruction executed out of line
/// (relocated with Iced), every byte restored on detach.
/// </summary>
public class PtraceBackendTests(NativeTargets targets) : IClassFixture<NativeTargets>
{
    [Fact]
    public void AttachToARunningMultiThreadedProcessMissNothingAndDetachCleanly()
    {
        string t = targets["targets"];
        string expected = NativeTargets.RunToEnd(t, "300", "4", "1");
        // Through bash, so the target is not our child (see PtraceUprobeSession's remarks): bash
        // prints the target's pid, then its output, and exits with its status.
        using Process target = NativeTargets.Start("bash", "-c", "\"$0\" \"$@\" & echo $!; wait $!", t, "300", "4", "1");
        int pid = int.Parse(target.StandardOutput.ReadLine()!);
        Thread.Sleep(100);
        var hits = new Collector();
        using (PtraceUprobeSession.Start(
                   [UprobeSpec.Parse($"{t}:add6(i64,i64,i64,i64,i64,i64)"), UprobeSpec.Parse($"{t}:greet(str,i32)"), UprobeSpec.Parse($"{t}:widths(i8,i16,u8,u16,i32,u64)")],
                   pid, hits.Add))
        {
            Thread.Sleep(400);
        }

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
    public void ReturnProbesAreRefusedClearly()
    {
        using Process target = NativeTargets.Start("bash", "-c", "\"$0\" \"$@\" & echo $!; wait $!", targets["targets"], "100", "1", "5");
        int pid = int.Parse(target.StandardOutput.ReadLine()!);
        try
        {
            var ex = Assert.Throws<UprobeException>(() =>
                PtraceUprobeSession.Start([UprobeSpec.Parse($"{targets["targets"]}:add6%return(i64)")], pid, _ => { }));
            Assert.Contains("entries only", ex.Message);
        }
        finally
        {
            target.Kill(entireProcessTree: true);
            target.WaitForExit();
        }
    }
}
