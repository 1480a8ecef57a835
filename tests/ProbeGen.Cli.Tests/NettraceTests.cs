using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.Diagnostics.Tracing;
using Xunit;

namespace ProbeGen.Cli.Tests;

/// <summary>
/// <c>probegen trace -o FILE</c> saves the session as a .nettrace: TraceEvent reads every hit back
/// with its payload, and the real <c>dotnet-trace convert</c> opens it.
/// </summary>
public class NettraceTests
{
    [Fact]
    public void TraceOutputIsANettraceThatTraceEventAndDotnetTraceOpen()
    {
        string file = Path.Combine(Path.GetTempPath(), $"probegen-{Guid.NewGuid():N}.nettrace");
        try
        {
            using Target target = Processes.StartSample();
            Result result = Processes.Run(TimeSpan.FromSeconds(60), "trace", "-p", target.Pid.ToString(), "orders:placed", "payments:charge", "--max-events", "30", "--json", "-o", file);
            Assert.True(result.ExitCode == 0, result.ToString());

            var probes = new List<string>();
            var cards = new List<string>();
            using (var source = new EventPipeEventSource(file))
            {
                source.Dynamic.All += e =>
                {
                    if (!e.ProviderName.StartsWith("ProbeGen-", StringComparison.Ordinal) || (int)e.ID != 5)  // ControlProtocol.HitEvent
                        return;
                    probes.Add((string)e.PayloadByName("Probe"));
                    cards.Add((string)e.PayloadByName("Args"));
                };
                source.Process();
            }
            // Every printed hit is in the file (hits in flight when --max-events stopped the run may follow).
            Assert.True(probes.Count >= 30, $"{probes.Count} hits in the file");
            Assert.All(probes, p => Assert.Contains(p, new[] { "orders:placed", "payments:charge" }));
            Assert.DoesNotContain(cards, a => a.Contains("4111-"));  // redacted in the file too

            string root = MetricsTests.RepositoryRoot();
            Assert.Equal(0, MetricsTests.Dotnet(root, "tool", "restore").ExitCode);
            var convert = MetricsTests.Dotnet(root, "tool", "run", "dotnet-trace", "convert", file, "--format", "Chromium", "-o", file + ".json");
            Assert.True(convert.ExitCode == 0, convert.Output);
            Assert.Contains("Conversion complete", convert.Output);
        }
        finally
        {
            foreach (string f in Directory.GetFiles(Path.GetTempPath(), Path.GetFileName(file) + "*"))
                File.Delete(f);
        }
    }

    [Fact]
    public void AnOutputThatCannotBeWrittenIsAUsageError() =>
        CliTests.Expect(2, "--output: cannot write", "trace", "-p", Environment.ProcessId.ToString(), "orders:*", "-o", "/nonexistent-dir/x.nettrace");
}
