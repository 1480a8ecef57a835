using System.Collections.Generic;
using System.IO;
using System.Text.Json;

namespace ProbeGen.Cli.TraceFiles;

/// <summary>
/// The Chrome trace-event format: each method probe call a complete event (<c>ph: X</c>) that
/// starts at its return's time minus its duration, each static probe an instant (<c>ph: i</c>),
/// times in microseconds. Entries carry nothing a return does not, so they are left out.
/// </summary>
internal static class ChromiumTraceWriter
{
    public static void Write(Stream output, int pid, IEnumerable<RecordedHit> hits)
    {
        using var w = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        w.WriteStartObject();
        w.WriteString("displayTimeUnit", "ns");
        w.WriteStartArray("traceEvents");
        foreach (RecordedHit hit in hits)
        {
            if (hit.Point == "entry")
                continue;
            w.WriteStartObject();
            w.WriteString("name", hit.Probe);
            w.WriteString("cat", hit.Probe[..hit.Probe.IndexOf(':')]);
            w.WriteNumber("pid", pid);
            w.WriteNumber("tid", hit.ThreadId);
            if (hit.Point == "return")
            {
                w.WriteString("ph", "X");
                w.WriteNumber("ts", (hit.TimestampNs - hit.ElapsedNs) / 1000.0);
                w.WriteNumber("dur", hit.ElapsedNs / 1000.0);
            }
            else
            {
                w.WriteString("ph", "i");
                w.WriteString("s", "t");
                w.WriteNumber("ts", hit.TimestampNs / 1000.0);
            }
            w.WritePropertyName("args");
            w.WriteStartObject();
            w.WritePropertyName("args");
            w.WriteRawValue(hit.Args.Length > 0 ? hit.Args : "{}");
            if (hit.Exception is { Length: > 0 } exception)
                w.WriteString("exception", exception);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
