using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Runtime.InteropServices;
namespace ProbeGen.Control;

/// <summary>
/// Decodes a session reply's raw payload by <see cref="ReplyFields"/>. The bytes come from another
/// process: every read is bounds-checked, and a payload that does not fit its layout is refused.
/// </summary>
public static class ReplyReader
{
    /// <summary>The fields by name, or null when the payload is shorter than its layout or a text has no end.</summary>
    public static Dictionary<string, object?>? Decode(int eventId, ReadOnlySpan<byte> payload)
    {
        ReadOnlySpan<ReplyField> fields = ReplyFields.Of(eventId);
        var values = new Dictionary<string, object?>(fields.Length, StringComparer.Ordinal);
        foreach (ReplyField field in fields)
        {
            switch (field.Kind)
            {
                case ReplyFieldKind.Int32:
                    if (payload.Length < 4)
                        return null;
                    values[field.Name] = BinaryPrimitives.ReadInt32LittleEndian(payload);
                    payload = payload[4..];
                    break;
                case ReplyFieldKind.Int64:
                    if (payload.Length < 8)
                        return null;
                    values[field.Name] = BinaryPrimitives.ReadInt64LittleEndian(payload);
                    payload = payload[8..];
                    break;
                default:
                    if (ReadText(ref payload) is not { } text)
                        return null;
                    values[field.Name] = text;
                    break;
            }
        }
        return values;
    }

    /// <summary>UTF-16 text up to its NUL, which must lie inside the payload.</summary>
    private static string? ReadText(ref ReadOnlySpan<byte> payload)
    {
        ReadOnlySpan<char> chars = MemoryMarshal.Cast<byte, char>(payload[..(payload.Length & ~1)]);
        int end = chars.IndexOf('\0');
        if (end < 0)
            return null;
        string text = new(chars[..end]);
        payload = payload[((end + 1) * 2)..];
        return text;
    }
}
