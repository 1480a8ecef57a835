using System.IO;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>Every error, on both backends: one clear line and exit code 2.</summary>
public class ErrorTests(NativeTargets targets) : IClassFixture<NativeTargets>
{
    private void Expect(string message, string backend, params string[] arguments) => ExpectFrom([], message, backend, arguments);

    /// <summary>Runs the CLI (or <paramref name="prefix"/>, a command that runs it) and expects one line with <paramref name="message"/> and exit code 2.</summary>
    private void ExpectFrom(string[] prefix, string message, string backend, string[] arguments)
    {
        string[] command = [.. prefix.Length > 0 ? prefix : ["dotnet", targets.Cli], arguments[0], "--backend", backend, .. arguments[1..]];
        using var cli = NativeTargets.Start(command[0], command[1..]);
        string stderr = cli.StandardError.ReadToEnd();
        cli.WaitForExit();
        Assert.True(cli.ExitCode == 2, $"exit {cli.ExitCode}: {stderr}");
        string[] lines = stderr.Split('\n', System.StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(message, lines[0]);
    }

    [Theory]
    [InlineData("perf")]
    [InlineData("ptrace")]
    public void MissingSymbolSuggestsCloseMatches(string backend) => Expect("close matches: greet", backend, "uprobe", $"{targets["targets"]}:gret", "--", "true");

    [Theory]
    [InlineData("perf")]
    [InlineData("ptrace")]
    public void StrippedBinary(string backend) => Expect("is stripped", backend, "uprobe", $"{targets["targets-stripped"]}:greet", "--", "true");

    [Theory]
    [InlineData("perf")]
    [InlineData("ptrace")]
    public void NotElf(string backend)
    {
        string notElf = Path.Combine(NativeTargets.RepositoryRoot(), "samples/native/targets.c");
        Expect("is not an ELF file", backend, "uprobe", $"{notElf}:main", "--", "true");
    }

    [Theory]
    [InlineData("perf")]
    [InlineData("ptrace")]
    public void NotX8664(string backend)
    {
        // A minimal, valid ELF64 header for AArch64 (e_machine 183), with no sections or segments.
        var header = new byte[64];
        new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1 }.CopyTo(header, 0);
        header[16] = 2;             // e_type: EXEC
        header[18] = 183;           // e_machine: AArch64
        header[20] = 1;             // e_version
        header[52] = 64;            // e_ehsize
        header[54] = 56;            // e_phentsize
        header[58] = 64;            // e_shentsize
        string path = Path.Combine(targets.Directory, "arm64.elf");
        File.WriteAllBytes(path, header);
        Expect("is not ELF x86-64", backend, "uprobe", $"{path}:f", "--", "true");
    }

    [Theory]
    [InlineData("perf", "perf_event_paranoid")]
    [InlineData("ptrace", "CAP_SYS_PTRACE")]
    public void NoPermissionSaysWhatIsNeeded(string backend, string needed)
    {
        // As nobody: perf needs root or CAP_PERFMON for uprobes, and ptrace may not touch another user's process.
        string[] asNobody = targets.CliAsNobody();
        using var target = NativeTargets.Start(targets["targets"], "1000", "1", "5");
        try
        {
            ExpectFrom(asNobody, needed, backend, ["uprobe", $"{targets["targets"]}:greet", "-p", target.Id.ToString()]);
        }
        finally
        {
            target.Kill();
            target.WaitForExit();
        }
    }

    [Theory]
    [InlineData("perf")]
    [InlineData("ptrace")]
    public void NoSuchProcess(string backend) => Expect("no such process", backend, "uprobe", $"{targets["targets"]}:greet", "-p", "99999999");

    [Theory]
    [InlineData("perf")]
    [InlineData("ptrace")]
    public void BadTypeList(string backend) => Expect("unknown type 'f32'", backend, "uprobe", $"{targets["targets"]}:greet(str,f32)", "--", "true");

    [Theory]
    [InlineData("perf")]
    [InlineData("ptrace")]
    public void TooManyArguments(string backend) => Expect("at most 6 arguments", backend, "uprobe", $"{targets["targets"]}:add6(i64,i64,i64,i64,i64,i64,i64)", "--", "true");

    [Theory]
    [InlineData("nocolon")]
    [InlineData("bin:")]
    [InlineData("bin:0xZZ")]
    [InlineData("bin:f%return(i64,i64)")]
    public void MalformedSpecs(string spec) => Assert.Throws<System.FormatException>(() => UprobeSpec.Parse(spec));

    [Fact]
    public void SpecsParse()
    {
        UprobeSpec s = UprobeSpec.Parse("./app:greet(str,i32)");
        Assert.Equal(("./app", "greet", false), (s.Binary, s.Symbol, s.Return));
        Assert.Equal([ArgType.Str, ArgType.I32], s.Types);
        UprobeSpec r = UprobeSpec.Parse("/lib/x.so:f%return(u64)");
        Assert.True(r.Return);
        Assert.Equal(0x1139UL, UprobeSpec.Parse("app:0x1139").Offset);
    }
}
