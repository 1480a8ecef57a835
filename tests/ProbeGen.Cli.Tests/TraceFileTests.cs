using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Xunit;

namespace ProbeGen.Cli.Tests;

/// <summary>
/// <c>probegen trace -o FILE</c> in the viewers' formats, checked against the hits the same run
/// printed: every call a frame or a complete event, every static probe an instant, and a
/// speedscope profile whose frames nest as speedscope requires.
/// </summary>
public class TraceFileTests
{
    private static (Result Run, JsonDocument File) Trace(string fileName, params string[] format)
    {
        string file = Path.Combine(Path.GetTempPath(), $"probegen-{Guid.NewGuid():N}-{fileName}");
        try
        {
            Result run = Processes.Run(TimeSpan.FromSeconds(120), ["trace", "orders:*", "payments:*", "catalog:*", "--json", "-o", file, .. format, "--", "dotnet", Processes.Sample, "--orders", "40"]);
            Assert.True(run.ExitCode == 0, run.ToString());
            return (run, JsonDocument.Parse(File.ReadAllText(file)));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void SpeedscopeHasAFramePerCallAndEveryProfileNests()
    {
        var (run, file) = Trace("run.speedscope.json");
        using (file)
        {
            string[] frames = file.RootElement.GetProperty("shared").GetProperty("frames").EnumerateArray().Select(f => f.GetProperty("name").GetString()!).ToArray();
            var opened = new Dictionary<string, int>();
            foreach (JsonElement profile in file.RootElement.GetProperty("profiles").EnumerateArray())
            {
                Assert.Equal("evented", profile.GetProperty("type").GetString());
                var stack = new Stack<int>();
                long last = 0;
                foreach (JsonElement e in profile.GetProperty("events").EnumerateArray())
                {
                    long at = e.GetProperty("at").GetInt64();
                    int frame = e.GetProperty("frame").GetInt32();
                    Assert.True(at >= last, "events out of order");
                    last = at;
                    if (e.GetProperty("type").GetString() == "O")
                    {
                        stack.Push(frame);
                        opened[frames[frame]] = opened.GetValueOrDefault(frames[frame]) + 1;
                    }
                    else
                    {
                        Assert.Equal(frame, stack.Pop());  // closes the innermost open frame
                    }
                }
                Assert.Empty(stack);
            }
            var expected = run.Hits.Where(h => h.GetProperty("point").GetString() != "entry")
                .GroupBy(h => h.GetProperty("probe").GetString()!).ToDictionary(g => g.Key, g => g.Count());
            Assert.Equal(expected.OrderBy(e => e.Key), opened.OrderBy(e => e.Key));
            Assert.Equal(40, expected["payments:charge"]);
        }
    }

    [Fact]
    public void ChromiumHasACompleteEventPerCallAndAnInstantPerFire()
    {
        var (run, file) = Trace("run.json", "--format", "chromium");
        using (file)
        {
            var events = file.RootElement.GetProperty("traceEvents").EnumerateArray().ToList();
            int returns = run.Hits.Count(h => h.GetProperty("point").GetString() == "return");
            int fires = run.Hits.Count(h => h.GetProperty("point").GetString() == "fire");
            Assert.Equal(returns, events.Count(e => e.GetProperty("ph").GetString() == "X"));
            Assert.Equal(fires, events.Count(e => e.GetProperty("ph").GetString() == "i"));
            Assert.All(events.Where(e => e.GetProperty("ph").GetString() == "X"), e => Assert.True(e.GetProperty("dur").GetDouble() >= 0));
            JsonElement charge = events.First(e => e.GetProperty("name").GetString() == "payments:charge");
            Assert.Equal("[redacted]", charge.GetProperty("args").GetProperty("args").GetProperty("card").GetString());
        }
    }

    [Fact]
    public void AnUnknownFormatOrAFormatWithoutAFileIsAUsageError()
    {
        CliTests.Expect(2, "--format: 'svg'", "trace", "-p", Environment.ProcessId.ToString(), "orders:*", "-o", "/tmp/x", "--format", "svg");
        CliTests.Expect(2, "--format needs -o FILE", "trace", "-p", Environment.ProcessId.ToString(), "orders:*", "--format", "json");
    }
}
