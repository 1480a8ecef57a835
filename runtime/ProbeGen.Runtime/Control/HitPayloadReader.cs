using System;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace ProbeGen.Control;

/// <summary>
/// Decodes a hit event (see <see cref="HitLayout"/>) straight into JSON, for <c>probegen</c> and
/// for anyone reading a saved <c>.nettrace</c>. The bytes come from another process or a file and
/// are not trusted: every read is bounds-checked, and the only failure is a <c>false</c> return
/// (never an exception) after which the reader must be abandoned and whatever it wrote discarded.
/// </summary>
/// <remarks>
/// The target's Data holds the argument count, the arguments, and for a return the return value and
/// the exception; read them in that order with <see cref="TryReadCount"/>, <see cref="TryWriteValue"/>,
/// <see cref="TryReadAbsent"/> and <see cref="TryReadText"/>, then check <see cref="AtEnd"/>.
/// </remarks>
public ref struct HitPayloadReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _position;

    /// <summary>A reader over a hit's Data.</summary>
    public HitPayloadReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _position = 0;
    }

    /// <summary>True once every byte of the Data was read: anything left over makes the payload malformed.</summary>
    public readonly bool AtEnd => _position == _data.Length;

    /// <summary>Splits a whole hit event's payload into its fixed fields and its Data; false when it is not one.</summary>
    public static bool TryReadEvent(ReadOnlySpan<byte> payload, out HitHeader header, out ReadOnlySpan<byte> data)
    {
        header = default;
        data = default;
        if (payload.Length < HitLayout.DataOffset)
            return false;
        byte point = payload[HitLayout.PointOffset];
        int length = BinaryPrimitives.ReadInt32LittleEndian(payload[HitLayout.DataLengthOffset..]);
        if (point > (byte)ProbePoint.Return || length != payload.Length - HitLayout.DataOffset)
            return false;
        header = new HitHeader(
            BinaryPrimitives.ReadInt32LittleEndian(payload[HitLayout.ProbeOffset..]),
            (ProbePoint)point,
            BinaryPrimitives.ReadInt32LittleEndian(payload[HitLayout.ThreadIdOffset..]),
            BinaryPrimitives.ReadInt64LittleEndian(payload[HitLayout.TimestampOffset..]),
            BinaryPrimitives.ReadInt64LittleEndian(payload[HitLayout.ElapsedOffset..]));
        data = payload[HitLayout.DataOffset..];
        return true;
    }

    /// <summary>The argument count at the start of the Data.</summary>
    public bool TryReadCount(out int count)
    {
        count = 0;
        if (!TryTake(1, out ReadOnlySpan<byte> b))
            return false;
        count = b[0];
        return true;
    }

    /// <summary>Consumes an <see cref="HitValueTag.Absent"/> tag if one comes next: a void return, or no exception.</summary>
    public bool TryReadAbsent(out bool absent)
    {
        absent = false;
        if (_position >= _data.Length)
            return false;
        if (_data[_position] == (byte)HitValueTag.Absent)
        {
            _position++;
            absent = true;
        }
        return true;
    }

    /// <summary>A string value as its UTF-16 code units (the exception's text).</summary>
    public bool TryReadText(out ReadOnlySpan<char> text)
    {
        text = default;
        return TryTake(1, out ReadOnlySpan<byte> tag) && tag[0] == (byte)HitValueTag.String && TryReadChars(out text);
    }

    /// <summary>Writes the next value as JSON; false (with part of it possibly written) when the bytes are not a value.</summary>
    public bool TryWriteValue(Utf8JsonWriter writer)
    {
        try
        {
            return TryWriteNested(writer, depth: 0);
        }
        catch (ArgumentException)
        {
            // Text the writer cannot encode: malformed, like any other bad byte.
            return false;
        }
    }

    private bool TryWriteNested(Utf8JsonWriter w, int depth)
    {
        if (!TryTake(1, out ReadOnlySpan<byte> tag))
            return false;
        ReadOnlySpan<byte> v;
        switch ((HitValueTag)tag[0])
        {
            case HitValueTag.Null: w.WriteNullValue(); return true;
            case HitValueTag.False: w.WriteBooleanValue(false); return true;
            case HitValueTag.True: w.WriteBooleanValue(true); return true;
            case HitValueTag.Redacted: w.WriteStringValue(ProbeRedaction.Placeholder); return true;
            case HitValueTag.Int8 when TryTake(1, out v): w.WriteNumberValue((sbyte)v[0]); return true;
            case HitValueTag.UInt8 when TryTake(1, out v): w.WriteNumberValue(v[0]); return true;
            case HitValueTag.Int16 when TryTake(2, out v): w.WriteNumberValue(BinaryPrimitives.ReadInt16LittleEndian(v)); return true;
            case HitValueTag.UInt16 when TryTake(2, out v): w.WriteNumberValue(BinaryPrimitives.ReadUInt16LittleEndian(v)); return true;
            case HitValueTag.Int32 when TryTake(4, out v): w.WriteNumberValue(BinaryPrimitives.ReadInt32LittleEndian(v)); return true;
            case HitValueTag.UInt32 when TryTake(4, out v): w.WriteNumberValue(BinaryPrimitives.ReadUInt32LittleEndian(v)); return true;
            case HitValueTag.Int64 when TryTake(8, out v): w.WriteNumberValue(BinaryPrimitives.ReadInt64LittleEndian(v)); return true;
            case HitValueTag.UInt64 when TryTake(8, out v): w.WriteNumberValue(BinaryPrimitives.ReadUInt64LittleEndian(v)); return true;
            case HitValueTag.Single when TryTake(4, out v):
            {
                float f = BinaryPrimitives.ReadSingleLittleEndian(v);
                if (!float.IsFinite(f))
                    return false;
                w.WriteNumberValue(f);
                return true;
            }
            case HitValueTag.Double when TryTake(8, out v):
            {
                double d = BinaryPrimitives.ReadDoubleLittleEndian(v);
                if (!double.IsFinite(d))
                    return false;
                w.WriteNumberValue(d);
                return true;
            }
            case HitValueTag.Decimal when TryTake(16, out v):
            {
                int flags = BinaryPrimitives.ReadInt32LittleEndian(v[12..]);
                int scale = (flags >> 16) & 0xFF;
                // decimal.GetBits's flags: the sign bit and a scale of 0 to 28, nothing else.
                if ((flags & 0x7F00FFFF) != 0 || scale > 28)
                    return false;
                w.WriteNumberValue(new decimal(BinaryPrimitives.ReadInt32LittleEndian(v), BinaryPrimitives.ReadInt32LittleEndian(v[4..]),
                    BinaryPrimitives.ReadInt32LittleEndian(v[8..]), flags < 0, (byte)scale));
                return true;
            }
            case HitValueTag.String when TryReadChars(out ReadOnlySpan<char> chars):
                w.WriteStringValue(chars);
                return true;
            case HitValueTag.Array when depth < HitLayout.MaxArrayDepth && TryTake(2, out v):
            {
                int count = BinaryPrimitives.ReadUInt16LittleEndian(v);
                w.WriteStartArray();
                for (int i = 0; i < count; i++)
                {
                    if (!TryWriteNested(w, depth + 1))
                        return false;
                }
                w.WriteEndArray();
                return true;
            }
            default:
                return false;
        }
    }

    private bool TryReadChars(out ReadOnlySpan<char> chars)
    {
        chars = default;
        if (!TryTake(4, out ReadOnlySpan<byte> count))
            return false;
        int length = BinaryPrimitives.ReadInt32LittleEndian(count);
        if (length < 0 || length > (_data.Length - _position) / 2 || !TryTake(length * 2, out ReadOnlySpan<byte> bytes))
            return false;
        chars = MemoryMarshal.Cast<byte, char>(bytes);
        return true;
    }

    private bool TryTake(int size, out ReadOnlySpan<byte> bytes)
    {
        if (size > _data.Length - _position)
        {
            bytes = default;
            return false;
        }
        bytes = _data.Slice(_position, size);
        _position += size;
        return true;
    }
}
