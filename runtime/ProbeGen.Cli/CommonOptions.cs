using System;
using System.CommandLine;
using System.Globalization;
using System.Linq;

namespace ProbeGen.Cli;

/// <summary>The options several commands share, named as dotnet-trace names them.</summary>
internal static class CommonOptions
{
    /// <summary>
    /// JSON for people and grep: still valid JSON, but <c>&lt;</c>, <c>&gt;</c>, <c>&amp;</c>, quotes
    /// and non-ASCII text as themselves, not <c>\u003C</c>. The output is never embedded in HTML.
    /// </summary>
    public static readonly System.Text.Json.JsonSerializerOptions ReadableJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Option<int?> ProcessId() => new("--process-id", "-p")
    {
        Description = "The process to attach to.",
    };

    public static Option<string?> Name() => new("--name", "-n")
    {
        Description = "The process to attach to, by name: its executable's, or for 'dotnet App.dll' the app's (App). Must name exactly one.",
    };

    /// <summary>The process -p or -n names; null when neither was given. Both, or a name that matches no or several .NET processes, is a usage error.</summary>
    public static int? ResolveProcess(int? pid, string? name)
    {
        if (name is null)
            return pid;
        if (pid is not null)
            throw CliException.Usage("give either -p PID or -n NAME, not both");
        if (name.Length is 0 or > 256)
            throw CliException.Usage("-n needs a process name");
        var matches = new System.Collections.Generic.List<int>();
        foreach (int candidate in Target.TargetProcess.PublishedRuntimes())
        {
            if (NamesOf(candidate).Contains(name))
                matches.Add(candidate);
        }
        return matches.Count switch
        {
            1 => matches[0],
            0 => throw CliException.Usage($"no .NET process named '{name}' (probegen ps lists them)"),
            _ => throw CliException.Usage($"{matches.Count} .NET processes are named '{name}' ({string.Join(", ", matches.Order())}); pick one with -p"),
        };
    }

    /// <summary>What -n matches for a process: its comm, its executable's name, and for a host running an app (<c>dotnet App.dll</c>) the app's name.</summary>
    private static System.Collections.Generic.HashSet<string> NamesOf(int pid)
    {
        var names = new System.Collections.Generic.HashSet<string>(StringComparer.Ordinal);
        try
        {
            names.Add(System.IO.File.ReadAllText($"/proc/{pid}/comm").Trim());
            string[] argv = System.IO.File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
            // comm is cut at 15 characters: the executable's own name, whole, counts too.
            if (argv.Length > 0)
                names.Add(System.IO.Path.GetFileName(argv[0]));
            if (argv.Length > 1 && System.IO.Path.GetFileName(argv[0]) == "dotnet")
                names.Add(System.IO.Path.GetFileNameWithoutExtension(argv[1]));
        }
        catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException)
        {
            // Gone, or another user's: it matches nothing.
        }
        return names;
    }

    public static Option<bool> Json() => new("--json")
    {
        Description = "Print one JSON object per line.",
    };

    public static Option<string?> Duration() => new("--duration")
    {
        Description = "Stop after this long, e.g. 10s, 500ms, 2m.",
    };

    /// <summary>
    /// The EventPipe buffer a session asks the target for unless told otherwise, in megabytes. The
    /// target fills it only while the reader is behind (EventPipe allocates it as events wait), and
    /// at a million hits a second 64 MB rides out the pauses of the reader that 16 MB did not.
    /// </summary>
    public const int DefaultBufferMegabytes = 64;

    /// <summary>The largest buffer a session may ask for, in megabytes: the target pays it in memory.</summary>
    public const int MaxBufferMegabytes = 1024;

    public static Option<int> BufferSize() => new("--buffersize")
    {
        Description = $"The target's event buffer for this session, in MB ({DefaultBufferMegabytes} by default, at most {MaxBufferMegabytes}). When it fills, events are dropped and counted.",
        DefaultValueFactory = _ => DefaultBufferMegabytes,
    };

    /// <summary>Checks a --buffersize value.</summary>
    public static int CheckBufferSize(int megabytes) => megabytes is >= 1 and <= MaxBufferMegabytes
        ? megabytes
        : throw CliException.Usage($"--buffersize must be between 1 and {MaxBufferMegabytes} (MB), not {megabytes}");

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
        double seconds = value * scale;
        if (seconds > MaxDuration.TotalSeconds)
            throw CliException.Usage($"{option}: '{text}' is longer than the longest duration, {MaxDuration.TotalDays:0} days");
        if (seconds < 0.001)
            throw CliException.Usage($"{option}: '{text}' is shorter than a millisecond");
        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>The longest --duration or --interval: what a timer can wait (int.MaxValue milliseconds), about 24 days.</summary>
    public static readonly TimeSpan MaxDuration = TimeSpan.FromMilliseconds(int.MaxValue);

    /// <summary>
    /// The patterns as the target will get them: each valid, duplicates dropped, within the
    /// protocol's bounds; the first problem is a usage error.
    /// </summary>
    public static string[] DistinctPatterns(string[] patterns)
    {
        var distinct = new System.Collections.Generic.List<string>();
        var seen = new System.Collections.Generic.HashSet<string>(StringComparer.Ordinal);
        foreach (string pattern in patterns)
        {
            // What System.CommandLine could not match to an option lands here: a misspelled option
            // (--wher) must not silently become a pattern that traces nothing, or everything.
            if (pattern.StartsWith('-'))
                throw CliException.Usage($"unknown option '{pattern}' (see --help); a pattern cannot start with '-'");
            if (!ProbePattern.TryParse(pattern, out _, out string? error))
                throw CliException.Usage(error!);
            if (seen.Add(pattern))
                distinct.Add(pattern);
        }
        if (distinct.Count > Control.ControlProtocol.MaxPatterns)
            throw CliException.Usage($"{distinct.Count} distinct patterns; the limit is {Control.ControlProtocol.MaxPatterns} (use wildcards to cover more probes with fewer patterns)");
        return distinct.ToArray();
    }
}
