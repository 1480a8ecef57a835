using System;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>The factory: each backend asked for is the one that runs, and ptrace refuses to trace every process.</summary>
public class UprobeSessionsTests(NativeTargets targets) : IClassFixture<NativeTargets>
{
    [Theory]
    [InlineData(UprobeBackend.Perf)]
    [InlineData(UprobeBackend.Ptrace)]
    public void LaunchRunsTheBackendAskedFor(UprobeBackend backend)
    {
        string t = targets["targets"];
        var hits = new Collector();
        string? fellBack = null;
        using IUprobeSession session = UprobeSessions.Launch(backend, [UprobeSpec.Parse($"{t}:greet(str,i32)")], [t, "5", "1"], hits.Add, onFallback: why => fellBack = why);
        Assert.True(session.WaitForEnd(TimeSpan.FromSeconds(60)));
        Assert.Equal(backend, session.Backend);
        Assert.Null(fellBack);
        Assert.True(session.Planted);
        Assert.Null(session.Failure);
        Assert.Equal(0, session.ExitCode);
        Assert.Equal(5, session.Hits);
    }

    [Fact]
    public void PtraceCannotTraceEveryProcess() =>
        Assert.Throws<ArgumentException>(() => UprobeSessions.Start(UprobeBackend.Ptrace, [], pid: null, _ => { }));
}
