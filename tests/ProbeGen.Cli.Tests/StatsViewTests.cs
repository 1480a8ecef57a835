using System;
using System.Diagnostics;
using System.Threading;
using Xunit;

namespace ProbeGen.Cli.Tests;

/// <summary>
/// The live <c>stats</c> view in a real terminal: tmux runs probegen on a pseudo-terminal, the test
/// reads the screen, presses <c>q</c>, and reads what stays on it.
/// </summary>
public class StatsViewTests
{
    private static string Tmux(params string[] arguments)
    {
        var start = new ProcessStartInfo("tmux") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments)
            start.ArgumentList.Add(a);
        Process tmux;
        try
        {
            tmux = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"tmux is not installed ({ex.Message}); .ci/run installs it", ex);
        }
        using (tmux)
        {
            string output = tmux.StandardOutput.ReadToEnd();
            tmux.WaitForExit();
            return output;
        }
    }

    private static string WaitForScreen(string session, Func<string, bool> until, string what)
    {
        string screen = "";
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            screen = Tmux("capture-pane", "-p", "-S", "-200", "-t", session);
            if (until(screen))
                return screen;
            Thread.Sleep(200);
        }
        Assert.Fail($"the terminal never showed {what}:\n{screen}");
        return screen;
    }

    [Fact]
    public void TheLiveViewShowsStatusCallsErrorsPercentilesAndAHistogramAndQQuits()
    {
        using Target target = Processes.StartSample();
        string session = "probegen" + Guid.NewGuid().ToString("N")[..8];
        string command = $"dotnet '{Processes.Cli}' stats -p {target.Pid} 'payments:*' 'orders:*' --interval 300ms; echo EXITED=$?; sleep 60";
        Tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "50", command);
        try
        {
            // Some cards are declined: the row shows errors, then its latency in ms, once a snapshot has counted some.
            const string ChargeRow = @"│ payments:charge\s+│\s+\d+ │\s+[\d.]+ │\s+[1-9]\d* │\s+[\d.]+ ms";
            string live = WaitForScreen(session, s => System.Text.RegularExpressions.Regex.IsMatch(s, ChargeRow) && s.Contains("@latency[payments:charge]"),
                "the payments:charge row with errors and its histogram");
            Assert.Contains($"process {target.Pid} |", live);
            Assert.Contains("p99", live);
            Assert.Contains("q or Ctrl-C to quit", live);

            Tmux("send-keys", "-t", session, "q");
            string after = WaitForScreen(session, s => s.Contains("EXITED="), "probegen exiting after q");
            Assert.Contains("EXITED=0", after);
            Assert.Matches(@"\d+ snapshots, 0 dropped", after);
            Assert.Contains("│ payments:charge", after);  // the final table stays on screen
        }
        finally
        {
            Tmux("kill-session", "-t", session);
        }
    }
}
