using System;

namespace ProbeGen.Cli.TraceFiles;

/// <summary>What <c>probegen trace -o FILE</c> writes.</summary>
internal enum TraceFileFormat
{
    /// <summary>
    /// The session's EventPipe stream, byte for byte, with a stack per event: PerfView, <c>dotnet-trace convert</c>,
    /// TraceEvent. Hits carry their values in a binary field (see <see cref="Control.HitLayout"/>), which viewers
    /// show as bytes; <see cref="Control.HitPayloadReader"/> decodes it.
    /// </summary>
    Nettrace,

    /// <summary>One JSON object per hit, as <c>--json</c> prints them.</summary>
    Json,

    /// <summary>speedscope's evented format: a timeline per thread, method probe calls as frames.</summary>
    Speedscope,

    /// <summary>The Chrome trace-event format (chrome://tracing, Perfetto): calls as complete events, static probes as instants.</summary>
    Chromium,
}

/// <summary>Parses <c>--format</c>, or infers the format from the file's name.</summary>
internal static class TraceFileFormats
{
    public static TraceFileFormat Resolve(string? format, string path)
    {
        if (format is not null)
        {
            return format.ToLowerInvariant() switch
            {
                "nettrace" => TraceFileFormat.Nettrace,
                "json" => TraceFileFormat.Json,
                "speedscope" => TraceFileFormat.Speedscope,
                "chromium" or "chrome" => TraceFileFormat.Chromium,
                _ => throw CliException.Usage($"--format: '{format}' is not one of nettrace, json, speedscope, chromium"),
            };
        }
        string name = System.IO.Path.GetFileName(path).ToLowerInvariant();
        if (name.EndsWith(".speedscope.json", StringComparison.Ordinal))
            return TraceFileFormat.Speedscope;
        if (name.EndsWith(".chromium.json", StringComparison.Ordinal) || name.EndsWith(".trace.json", StringComparison.Ordinal))
            return TraceFileFormat.Chromium;
        if (name.EndsWith(".json", StringComparison.Ordinal) || name.EndsWith(".jsonl", StringComparison.Ordinal))
            return TraceFileFormat.Json;
        return TraceFileFormat.Nettrace;
    }
}
