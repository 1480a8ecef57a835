using System;
using System.CommandLine;
using System.Globalization;

namespace ProbeGen.Cli;

/// <summary>The options several commands share, named as dotnet-trace names them.</summary>
internal static class CommonOptions
{
    public static Option<int?> ProcessId() => new("--process-id", "-p")
    {
        Description = "The process to attach to.",
    };

    public static Option<bool> Json() => new("--json")
    {
        Description = "Print one JSON object per line.",
    };

    public static Option<string?> Duration() => new("--duration")
    {
        Description = "Stop after this long, e.g. 10s, 500ms, 2m.",
    };

    public static Argument<string[]> Patterns() => new("PATTERN")
    {
        Description = "Probe patterns such as orders:* or *:charge.",
        Arity = ArgumentArity.OneOrMore,
    };

    /// <summary>Parses 10s, 500ms, 2m, 1h or a plain number of seconds.</summary>
    public static TimeSpan? ParseDuration(string? text, string option)
    {
        if (text is null)
            return null;
        string t = text.Trim();
        (string number, double scale) = t.EndsWith("ms", StringComparison.Ordinal) ? (t[..^2], 0.001)
            : t.EndsWith('s') ? (t[..^1], 1)
            : t.EndsWith('m') ? (t[..^1], 60)
            : t.EndsWith('h') ? (t[..^1], 3600)
            : (t, 1);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || value <= 0 || !double.IsFinite(value))
            throw CliException.Usage($"{option}: '{text}' is not a duration (use e.g. 10s, 500ms, 2m)");
        return TimeSpan.FromSeconds(value * scale);
    }
}
