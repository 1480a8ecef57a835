using System;
using System.IO;
using System.Text;
using System.Text.Json;
using ProbeGen.Cli.Target;
using ProbeGen.Control;

namespace ProbeGen.Cli.Commands;

/// <summary>
/// Prints hits as a readable stream or as JSON lines. A JSON line is written straight from the
/// hit's binary payload into a UTF-8 buffer, with no string or dictionary per hit; the buffer goes
/// out in large writes (<see cref="Flush"/>).
/// </summary>
/// <remarks>Not thread-safe: the caller serialises every call.</remarks>
internal sealed class HitPrinter
{
    private static readonly JsonEncodedText Ts = JsonEncodedText.Encode("ts"), Pid = JsonEncodedText.Encode("pid"), Tid = JsonEncodedText.Encode("tid"),
        ProbeName = JsonEncodedText.Encode("probe"), PointName = JsonEncodedText.Encode("point"), Args = JsonEncodedText.Encode("args"),
        Ret = JsonEncodedText.Encode("ret"), ElapsedNs = JsonEncodedText.Encode("elapsed_ns"), ExceptionName = JsonEncodedText.Encode("exception");

    private static readonly JsonEncodedText[] Points = [JsonEncodedText.Encode("fire"), JsonEncodedText.Encode("entry"), JsonEncodedText.Encode("return")];

    /// <summary>Buffered output is written once it grows past this.</summary>
    private const int FlushBytes = 48 * 1024;

    private readonly TextWriter _output;
    private readonly bool _json;
    private readonly int _pid;
    private readonly Utf8Lines _lines = new();
    private readonly Utf8JsonWriter _writer;
    private readonly Utf8Lines _scratch = new();
    private readonly Utf8JsonWriter _scratchWriter;

    /// <summary>The longest probe id printed so far: ids are padded to it, so columns line up for ids of any length.</summary>
    private int _probeWidth;

    public HitPrinter(TextWriter output, bool json, int pid)
    {
        _output = output;
        _json = json;
        _pid = pid;
        // Lines are well-formed by construction, and the reader's own checks reject bad payloads.
        var options = new JsonWriterOptions { Encoder = HitBinding.Encoder, SkipValidation = true };
        _writer = new Utf8JsonWriter(_lines, options);
        _scratchWriter = new Utf8JsonWriter(_scratch, options);
    }

    /// <summary>Prints one hit from its payload; false, with nothing printed, when the payload is malformed.</summary>
    public bool TryPrint(HitBinding binding, in HitHeader hit, ReadOnlySpan<byte> data)
    {
        if (!_json)
        {
            if (Decode(binding, in hit, data) is not { } decoded)
                return false;
            Print(decoded);
            return true;
        }
        int lineStart = _lines.Count;
        if (!TryWriteLine(binding, in hit, data))
        {
            _writer.Reset();
            _lines.Truncate(lineStart);
            return false;
        }
        if (_lines.Count >= FlushBytes)
            Flush();
        return true;
    }

    private bool TryWriteLine(HitBinding binding, in HitHeader hit, ReadOnlySpan<byte> data)
    {
        Utf8JsonWriter w = _writer;
        var reader = new HitPayloadReader(data);
        if (!reader.TryReadCount(out int count))
            return false;
        w.WriteStartObject();
        w.WriteNumber(Ts, hit.Timestamp);
        w.WriteNumber(Pid, _pid);
        w.WriteNumber(Tid, hit.ThreadId);
        w.WriteString(ProbeName, binding.ProbeJson);
        w.WriteString(PointName, Points[(int)hit.Point]);
        w.WriteStartObject(Args);
        for (int i = 0; i < count; i++)
        {
            w.WritePropertyName(binding.Name(i));
            if (!reader.TryWriteValue(w))
                return false;
        }
        w.WriteEndObject();
        if (hit.Point == ProbePoint.Return)
        {
            w.WritePropertyName(Ret);
            if (!reader.TryReadAbsent(out bool noValue))
                return false;
            if (noValue)
                w.WriteNullValue();
            else if (!reader.TryWriteValue(w))
                return false;
            w.WriteNumber(ElapsedNs, hit.ElapsedNs);
            if (!reader.TryReadAbsent(out bool noException))
                return false;
            if (noException)
                w.WriteNull(ExceptionName);
            else if (reader.TryReadText(out ReadOnlySpan<char> exception))
                w.WriteString(ExceptionName, exception);
            else
                return false;
        }
        if (!reader.AtEnd)
            return false;
        w.WriteEndObject();
        w.Flush();
        w.Reset();
        _lines.NewLine();
        return true;
    }

    /// <summary>A hit as text fields, for the readable stream and the <c>-o</c> files; null when the payload is malformed.</summary>
    public TraceFiles.RecordedHit? Decode(HitBinding binding, in HitHeader hit, ReadOnlySpan<byte> data)
    {
        Utf8JsonWriter w = _scratchWriter;
        try
        {
            var reader = new HitPayloadReader(data);
            if (!reader.TryReadCount(out int count))
                return null;
            w.WriteStartObject();
            for (int i = 0; i < count; i++)
            {
                w.WritePropertyName(binding.Name(i));
                if (!reader.TryWriteValue(w))
                    return null;
            }
            w.WriteEndObject();
            string args = TakeScratch();
            string ret = "";
            string? exception = null;
            if (hit.Point == ProbePoint.Return)
            {
                if (!reader.TryReadAbsent(out bool noValue))
                    return null;
                if (!noValue)
                {
                    if (!reader.TryWriteValue(w))
                        return null;
                    ret = TakeScratch();
                }
                if (!reader.TryReadAbsent(out bool noException))
                    return null;
                if (!noException)
                {
                    if (!reader.TryReadText(out ReadOnlySpan<char> text))
                        return null;
                    exception = text.ToString();
                }
            }
            if (!reader.AtEnd)
                return null;
            return new TraceFiles.RecordedHit(hit.Timestamp, hit.ThreadId, binding.Probe, PointText(hit.Point), hit.ElapsedNs, args, ret, exception);
        }
        finally
        {
            w.Reset();
            _scratch.Truncate(0);
        }
    }

    private string TakeScratch()
    {
        _scratchWriter.Flush();
        string text = Encoding.UTF8.GetString(_scratch.Written);
        _scratchWriter.Reset();
        _scratch.Truncate(0);
        return text;
    }

    private static string PointText(ProbePoint point) => point switch { ProbePoint.Fire => "fire", ProbePoint.Entry => "entry", _ => "return" };

    public void Print(TraceFiles.RecordedHit hit) =>
        Print(hit.Probe, hit.Point, hit.ThreadId, hit.TimestampNs, hit.Args, hit.Ret, hit.ElapsedNs, hit.Exception ?? "");

    private void Print(string probe, string point, int tid, long ts, string args, string ret, long elapsed, string exception)
    {
        if (!_json)
        {
            var line = new StringBuilder();
            line.Append(DateTimeOffset.FromUnixTimeMilliseconds(ts / 1_000_000).ToLocalTime().ToString("HH:mm:ss.fff"))
                .Append(" [").Append(tid.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(5)).Append("] ")
                .Append(probe.PadRight(_probeWidth = Math.Max(_probeWidth, probe.Length))).Append(' ').Append(point.PadRight(6)).Append(' ').Append(args);
            if (point == "return")
            {
                line.Append(exception.Length > 0 ? " threw " + exception : ret.Length > 0 ? " -> " + ret : "");
                line.Append(System.FormattableString.Invariant($" in {elapsed / 1e6:F3} ms"));
            }
            _output.WriteLine(line.ToString());
            return;
        }
        Utf8JsonWriter w = _writer;
        w.WriteStartObject();
        w.WriteNumber(Ts, ts);
        w.WriteNumber(Pid, _pid);
        w.WriteNumber(Tid, tid);
        w.WriteString(ProbeName, probe);
        w.WriteString(PointName, point);
        w.WritePropertyName(Args);
        w.WriteRawValue(args.Length > 0 ? args : "{}", skipInputValidation: false);
        if (point == "return")
        {
            w.WritePropertyName(Ret);
            if (ret.Length > 0)
                w.WriteRawValue(ret);
            else
                w.WriteNullValue();
            w.WriteNumber(ElapsedNs, elapsed);
            if (exception.Length > 0)
                w.WriteString(ExceptionName, exception);
            else
                w.WriteNull(ExceptionName);
        }
        w.WriteEndObject();
        w.Flush();
        w.Reset();
        _lines.NewLine();
        if (_lines.Count >= FlushBytes)
            Flush();
    }

    /// <summary>Writes out the buffered lines.</summary>
    public void Flush()
    {
        if (_lines.Count == 0)
            return;
        if (_output is GuardedOutput guarded)
            guarded.WriteUtf8(_lines.Written);
        else
            _output.Write(Encoding.UTF8.GetString(_lines.Written));
        _lines.Truncate(0);
    }

    public void Summary(long events, long dropped, TextWriter to)
    {
        Flush();
        if (_json)
            to.WriteLine($"{{\"summary\":{{\"events\":{events},\"dropped\":{dropped}}}}}");
        else
            to.WriteLine($"{events} events, {dropped} dropped");
    }
}
