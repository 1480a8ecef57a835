using System.IO;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>Every error: one clear line and exit code 2.</summary>
public class ErrorTests(NativeTargets targets) : IClassFixture<NativeTargets>
{
    private void Expect(string message, params string[] arguments)
    {
        using var cli = NativeTargets.Start("dotnet", [targets.Cli, .. arguments]);
        string stderr = cli.StandardError.ReadToEnd();
        cli.WaitForExit();
        Assert.True(cli.ExitCode == 2, $"exit {cli.ExitCode}: {stderr}");
        string[] lines = stderr.Split('\n', System.StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains(message, lines[0]);
    }

    [Fact]
    public void MissingSymbolSuggestsCloseMatches() => Expect("close matches: greet", "uprobe", $"{targets["targets"]}:gret", "--", "true");

    [Fact]
    public void StrippedBinary() => Expect("is stripped", "uprobe", $"{targets["targets-stripped"]}:greet", "--", "true");

    [Fact]
    public void NotElf()
    {
        string notElf = Path.Combine(NativeTargets.RepositoryRoot(), "samples/native/targets.c");
        Expect("is not an ELF file", "uprobe", $"{notElf}:main", "--", "true");
    }

    [Fact]
    public void NotX8664()
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
        Expect("is not ELF x86-64", "uprobe", $"{path}:f", "--", "true");
    }

    [Fact]
    public void NoSuchProcess() => Expect("no such process", "uprobe", $"{targets["targets"]}:greet", "-p", "99999999");

    [Fact]
    public void BadTypeList() => Expect("unknown type 'f32'", "uprobe", $"{targets["targets"]}:greet(str,f32)", "--", "true");

    [Fact]
    public void TooManyArguments() => Expect("at most 6 arguments", "uprobe", $"{targets["targets"]}:add6(i64,i64,i64,i64,i64,i64,i64)", "--", "true");

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
