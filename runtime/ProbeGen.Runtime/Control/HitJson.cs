using System;
using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace ProbeGen.Control;

/// <summary>Writes a hit's arguments and return value as JSON text for the wire.</summary>
internal static class HitJson
{
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    /// <summary><c>{"name":value,...}</c> for the hit's arguments.</summary>
    public static string Arguments(in ProbeHit hit)
    {
        Utf8JsonWriter writer = Begin(out ArrayBufferWriter<byte> buffer);
        writer.WriteStartObject();
        int count = hit.ArgumentCount;
        for (int i = 0; i < count; i++)
        {
            writer.WritePropertyName(i < hit.Probe.Parameters.Count ? hit.Probe.Parameters[i].Name : "arg" + i);
            if (hit.Probe.IsArgumentRedacted(i))
                writer.WriteStringValue(ProbeRedaction.Placeholder);
            else
                WriteValue(writer, hit.GetArgument(i));
        }
        writer.WriteEndObject();
        return End(writer, buffer);
    }

    /// <summary>The return value as JSON text, or an empty string when there is none.</summary>
    public static string Return(in ProbeHit hit)
    {
        if (!hit.HasReturnValue)
            return "";
        Utf8JsonWriter writer = Begin(out ArrayBufferWriter<byte> buffer);
        if (hit.Probe.ReturnRedacted)
            writer.WriteStringValue(ProbeRedaction.Placeholder);
        else
            WriteValue(writer, hit.ReturnValue);
        return End(writer, buffer);
    }

    /// <summary>The most elements of a collection written per value; the rest are elided with a count.</summary>
    private const int MaxElements = 64;

    /// <summary>
    /// The longest string written per value. EventPipe drops an event over 64 KB without counting
    /// it, so every hit stays well under that: 8 arguments of at most 1 KB each, plus structure.
    /// </summary>
    private const int MaxString = 1024;

    private static string Clip(string text) => text.Length <= MaxString ? text : text[..MaxString] + $"...({text.Length - MaxString} more chars)";

    /// <summary>Writes one value: numbers, strings, bools and null as themselves, collections as arrays, anything else as its text.</summary>
    public static void WriteValue(Utf8JsonWriter writer, object? value) => WriteValue(writer, value, depth: 0);

    private static void WriteValue(Utf8JsonWriter writer, object? value, int depth)
    {
        // Only materialized collections: enumerating a lazy sequence would run the app's code again.
        if (value is System.Collections.ICollection items && depth < 2)
        {
            writer.WriteStartArray();
            int written = 0;
            foreach (object? item in items)
            {
                if (written == MaxElements)
                    break;
                WriteValue(writer, item, depth + 1);
                written++;
            }
            if (items.Count > written)
                writer.WriteStringValue($"... {items.Count - written} more");
            writer.WriteEndArray();
            return;
        }
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case string s: writer.WriteStringValue(Clip(s)); break;
            case int i: writer.WriteNumberValue(i); break;
            case long l: writer.WriteNumberValue(l); break;
            case short s16: writer.WriteNumberValue(s16); break;
            case byte u8: writer.WriteNumberValue(u8); break;
            case sbyte i8: writer.WriteNumberValue(i8); break;
            case uint u32: writer.WriteNumberValue(u32); break;
            case ulong u64: writer.WriteNumberValue(u64); break;
            case ushort u16: writer.WriteNumberValue(u16); break;
            case decimal m: writer.WriteNumberValue(m); break;
            case double d when double.IsFinite(d): writer.WriteNumberValue(d); break;
            case float f when float.IsFinite(f): writer.WriteNumberValue(f); break;
            case Enum e: writer.WriteStringValue(e.ToString()); break;
            case char c: writer.WriteStringValue(c.ToString()); break;
            default: writer.WriteStringValue(Clip(TextOf(value))); break;
        }
    }

    /// <summary>
    /// The app's own text for a value, the one place ProbeGen calls the app's code for a remote
    /// session (the caller holds the session's recursion guard). A ToString that throws costs the
    /// value, not the hit.
    /// </summary>
    private static string TextOf(object value)
    {
        try
        {
            return Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
        }
        catch (Exception ex)
        {
            return $"({value.GetType().Name}.ToString() threw {ex.GetType().Name})";
        }
    }

    private static Utf8JsonWriter Begin(out ArrayBufferWriter<byte> buffer)
    {
        buffer = t_buffer ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        if (t_writer is null)
            t_writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        else
            t_writer.Reset(buffer);
        return t_writer;
    }

    private static string End(Utf8JsonWriter writer, ArrayBufferWriter<byte> buffer)
    {
        writer.Flush();
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
