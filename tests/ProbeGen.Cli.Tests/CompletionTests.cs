using System;
using System.Diagnostics;
using System.IO;
using System.Text.RegularExpressions;
using Xunit;

namespace ProbeGen.Cli.Tests;

/// <summary>
/// The bash completion that docs/cli/completion.md tells users to install, taken from the page
/// itself and run in a real bash against the real probegen: the page cannot drift from what works.
/// </summary>
public class CompletionTests
{
    [Theory]
    [InlineData("probegen tra", "trace")]
    [InlineData("probegen trace --fo", "--format")]
    [InlineData("probegen trace -o t.json --format ", "chromium json nettrace speedscope")]
    [InlineData("probegen uprobe x --backend ", "auto jump perf ptrace")]
    public void TheDocumentedBashCompletionCompletesVerbsOptionsAndValues(string line, string expected)
    {
        string root = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Processes.Cli)!, "..", "..", "..", ".."));
        string page = File.ReadAllText(Path.Combine(root, "docs", "cli", "completion.md"));
        string script = Regex.Match(page, "```bash\n(.*?)```", RegexOptions.Singleline).Groups[1].Value;
        Assert.Contains("complete -o default -F _probegen_complete probegen", script);

        // What bash sets before it calls a completion function, for the cursor at the line's end.
        string driver = script + $"""
            COMP_LINE='{line}'
            COMP_POINT=${"{#COMP_LINE}"}
            _probegen_complete
            printf '%s\n' "${"{COMPREPLY[@]}"}"
            """;
        var start = new ProcessStartInfo("bash") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["PATH"] = Path.GetDirectoryName(Processes.Cli) + ":" + Environment.GetEnvironmentVariable("PATH");
        using Process bash = Process.Start(start)!;
        bash.StandardInput.Write(driver);
        bash.StandardInput.Close();
        string completions = bash.StandardOutput.ReadToEnd();
        Assert.True(bash.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.Equal(0, bash.ExitCode);
        Assert.Equal(expected, string.Join(' ', completions.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }
}
