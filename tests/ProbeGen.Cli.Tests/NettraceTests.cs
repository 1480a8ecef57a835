using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.Diagnostics.Tracing;
using ProbeGen.Control;
using Xunit;

namespace ProbeGen.Cli.Tests;

/// <summary>
/// <c>probegen trace -o FILE</c> saves the session as a .nettrace: TraceEvent reads every hit back,
/// its binary payload decodes with the runtime's reader, and the real <c>dotnet-trace convert</c> opens it.
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

            // Hits carry binary payloads (ProbeGen.Control.HitLayout): the file's reader decodes them
            // with HitPayloadReader, after the Bind events that name each probe index.
            var probes = new List<string>();
            var cards = new List<string>();
            var bindings = new Dictionary<int, (string Probe, string[] Names)>();
            int malformed = 0;
            using (var source = new EventPipeEventSource(file))
            {
                source.Dynamic.All += e =>
                {
                    if (!e.ProviderName.StartsWith("ProbeGen-", StringComparison.Ordinal))
                        return;
                    if ((int)e.ID == ControlProtocol.BindEvent)
                        bindings[(int)e.PayloadByName("Index")] = ((string)e.PayloadByName("Probe"), ((string)e.PayloadByName("Parameters")).Split('\n'));
                    if ((int)e.ID != ControlProtocol.HitEvent)
                        return;
                    Assert.True(HitPayloadReader.TryReadEvent(e.EventData(), out HitHeader hit, out ReadOnlySpan<byte> data));
                    var (probe, names) = bindings[hit.Probe];
                    probes.Add(probe);
                    var json = new System.Buffers.ArrayBufferWriter<byte>();
                    using (var w = new System.Text.Json.Utf8JsonWriter(json))
                    {
                        var reader = new HitPayloadReader(data);
                        Assert.True(reader.TryReadCount(out int count));
                        w.WriteStartObject();
                        for (int i = 0; i < count; i++)
                        {
                            w.WritePropertyName(names[i]);
                            if (!reader.TryWriteValue(w))
                                malformed++;
                        }
                        w.WriteEndObject();
                    }
                    cards.Add(System.Text.Encoding.UTF8.GetString(json.WrittenSpan));
                };
                source.Process();
            }
            Assert.Equal(0, malformed);
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
