using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace ProbeGen.Uprobes;

/// <summary>
/// A uprobe defined through tracefs (<c>uprobe_events</c>) rather than the uprobe PMU, for specs
/// with <c>str</c> arguments: the kernel fetches each string at the hit (<c>+0(%di):string</c>),
/// which no later read can do for a heap buffer freed or rewritten right after the call. The perf
/// backend opens it as a tracepoint event and reads the entry from PERF_SAMPLE_RAW.
/// </summary>
/// <remarks>
/// Events are named <c>probegen_PID/pN</c> and removed when the probe's descriptors are closed;
/// events left by a process that died are removed the next time one is defined.
/// </remarks>
internal sealed partial class TracefsEvent
{
    private static readonly string[] Registers = ["%di", "%si", "%dx", "%cx", "%r8", "%r9"];
    private static readonly Lock s_cleanup = new();
    private static int s_next;
    private static bool s_cleaned;

    private readonly string _root;
    private readonly UprobeSpec _spec;

    /// <summary>Where each value's raw register (<c>vN</c>) and fetched string (<c>sN</c>) lie in an entry; -1 for none. Looked up once, not per hit.</summary>
    private readonly int[] _valueOffsets, _stringOffsets;
    private int _removed;

    private TracefsEvent(string root, string group, string name, int id, UprobeSpec spec, List<(string Name, int Offset, int Size)> fields)
    {
        _root = root;
        Group = group;
        Name = name;
        Id = id;
        _spec = spec;
        int Offset(string field, int size) => fields.FirstOrDefault(f => f.Name == field && f.Size == size) is { Name: not null } f ? f.Offset : -1;
        _valueOffsets = [.. Enumerable.Range(0, spec.Types.Count).Select(i => Offset($"v{i}", 8))];
        _stringOffsets = [.. Enumerable.Range(0, spec.Types.Count).Select(i => Offset($"s{i}", 4))];
    }

    /// <summary>The tracepoint id to open with PERF_TYPE_TRACEPOINT.</summary>
    public int Id { get; }

    private string Group { get; }

    private string Name { get; }

    /// <summary>Off in tests of the fallback: the uprobe PMU with a stack copy per hit.</summary>
    internal static bool Disabled { get; set; }

    /// <summary>Defines the event, or returns null when tracefs is not there or refuses (the caller falls back to the uprobe PMU).</summary>
    public static TracefsEvent? TryDefine(UprobeSpec spec, string path, ulong offset)
    {
        string? root = Disabled ? null : Root();
        if (root is null || path.Any(char.IsWhiteSpace))
            return null;
        lock (s_cleanup)
        {
            if (!s_cleaned)
            {
                RemoveOrphans(root);
                s_cleaned = true;
            }
        }
        string group = $"probegen_{Environment.ProcessId}";
        string name = $"p{Interlocked.Increment(ref s_next)}";
        var definition = new StringBuilder(spec.Return ? "r:" : "p:").Append(group).Append('/').Append(name)
            .Append(' ').Append(path).Append(":0x").Append(offset.ToString("x", CultureInfo.InvariantCulture));
        for (int i = 0; i < spec.Types.Count; i++)
        {
            string source = spec.Return ? "$retval" : Registers[i];
            // The raw register always (a str's pointer tells NULL from a fetched string), and the string itself.
            definition.Append(" v").Append(i).Append('=').Append(source).Append(":x64");
            if (spec.Types[i] == ArgType.Str)
                definition.Append(" s").Append(i).Append("=+0(").Append(source).Append("):string");
        }
        try
        {
            File.AppendAllText(Path.Combine(root, "uprobe_events"), definition.Append('\n').ToString());
            string eventDirectory = Path.Combine(root, "events", group, name);
            int id = int.Parse(File.ReadAllText(Path.Combine(eventDirectory, "id")).Trim(), CultureInfo.InvariantCulture);
            return new TracefsEvent(root, group, name, id, spec, ReadFields(Path.Combine(eventDirectory, "format")));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    /// <summary>Removes the event; its perf descriptors must be closed first.</summary>
    public void Remove()
    {
        if (Interlocked.Exchange(ref _removed, 1) != 0)
            return;
        try
        {
            File.AppendAllText(Path.Combine(_root, "uprobe_events"), $"-:{Group}/{Name}\n");
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The spec's values from the raw trace entry of one hit.</summary>
    public object?[] Decode(ReadOnlySpan<byte> entry)
    {
        Span<ulong> raw = stackalloc ulong[UprobeSpec.MaxArguments];
        var fetched = new (ulong Address, string? Value)[_spec.Types.Count];
        for (int i = 0; i < _spec.Types.Count; i++)
        {
            int v = _valueOffsets[i], s = _stringOffsets[i];
            raw[i] = v >= 0 && v + 8 <= entry.Length ? BitConverter.ToUInt64(entry.Slice(v, 8)) : 0;
            if (_spec.Types[i] == ArgType.Str && s >= 0 && s + 4 <= entry.Length)
            {
                // __data_loc: the string's offset in the entry (low 16 bits) and its length with the NUL (high 16).
                uint location = BitConverter.ToUInt32(entry.Slice(s, 4));
                int at = (int)(location & 0xffff), length = (int)(location >> 16);
                string? value = null;
                if (raw[i] != 0 && length > 0 && at + length <= entry.Length)
                {
                    ReadOnlySpan<byte> bytes = entry.Slice(at, length);
                    int end = bytes.IndexOf((byte)0);
                    bytes = end >= 0 ? bytes[..end] : bytes;
                    value = Encoding.UTF8.GetString(bytes[..Math.Min(bytes.Length, StringSource.MaxLength)]);
                }
                fetched[i] = (raw[i], value);
            }
        }
        return _spec.Decode(raw, new StringSource(fetched));
    }

    /// <summary>The fields of an event's <c>format</c> file: "field:TYPE NAME;	offset:N;	size:N;	signed:N;".</summary>
    private static List<(string Name, int Offset, int Size)> ReadFields(string format)
    {
        var fields = new List<(string, int, int)>();
        foreach (string line in File.ReadLines(format))
        {
            string[] parts = line.Trim().Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 3 || !parts[0].StartsWith("field:", StringComparison.Ordinal))
                continue;
            string name = parts[0].Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1];
            int offset = int.Parse(parts[1]["offset:".Length..], CultureInfo.InvariantCulture);
            int size = int.Parse(parts[2]["size:".Length..], CultureInfo.InvariantCulture);
            fields.Add((name, offset, size));
        }
        return fields;
    }

    /// <summary>Where tracefs is mounted; mounts it at /sys/kernel/tracing when it is not (root only), as perf does.</summary>
    private static string? Root()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/mounts"))
            {
                string[] parts = line.Split(' ');
                if (parts.Length > 2 && parts[2] == "tracefs" && File.Exists(Path.Combine(parts[1], "uprobe_events")))
                    return parts[1];
            }
            const string standard = "/sys/kernel/tracing";
            if (Directory.Exists(standard) && mount("nodev", standard, "tracefs", 0, 0) == 0 && File.Exists(Path.Combine(standard, "uprobe_events")))
                return standard;
        }
        catch (IOException)
        {
        }
        return null;
    }

    /// <summary>Removes the events of ProbeGen processes that are gone (a tracer killed before it could clean up).</summary>
    private static void RemoveOrphans(string root)
    {
        try
        {
            foreach (string line in File.ReadAllLines(Path.Combine(root, "uprobe_events")))
            {
                // "p:probegen_1234/p1 /path:0x..."
                int start = line.IndexOf(":probegen_", StringComparison.Ordinal);
                int slash = line.IndexOf('/', Math.Max(start, 0));
                if (start < 0 || slash < 0 || !int.TryParse(line.AsSpan(start + 10, slash - start - 10), out int pid) || Directory.Exists($"/proc/{pid}"))
                    continue;
                string name = line[(start + 1)..line.IndexOf(' ', slash)];
                File.AppendAllText(Path.Combine(root, "uprobe_events"), $"-:{name}\n");
            }
        }
        catch (IOException)
        {
        }
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string source, string target, string type, ulong flags, nint data);
}
