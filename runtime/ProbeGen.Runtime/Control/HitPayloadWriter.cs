using System;
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;

namespace ProbeGen.Control;

/// <summary>
/// Encodes a hit's arguments, return value and exception as the Data of a hit event (see
/// <see cref="HitLayout"/>), into a buffer owned by the calling thread. Arguments of the primitive
/// types a probe declares are read unboxed, so such a hit allocates nothing; other values follow
/// the rules the JSON text used to follow, the app's ToString included.
/// </summary>
/// <remarks>
/// One instance per thread, reused by every hit on it. Reentrancy is impossible: the only app code
/// it runs is ToString, under <see cref="TraceForwarder"/>'s recursion guard, which drops any hit
/// forwarded from inside it.
/// </remarks>
internal sealed class HitPayloadWriter
{
    /// <summary>How a parameter's declared type is read: unboxed for these, boxed for anything else.</summary>
    public enum Kind : byte
    {
        Boxed, Boolean, SByte, Byte, Int16, UInt16, Int32, UInt32, Int64, UInt64, Single, Double, Decimal, Char, String,
    }

    [ThreadStatic] private static HitPayloadWriter? t_current;

    private byte[] _buffer = new byte[256];
    private int _length;
    private bool _overflowed;

    /// <summary>The calling thread's writer, emptied.</summary>
    public static HitPayloadWriter Begin()
    {
        HitPayloadWriter writer = t_current ??= new HitPayloadWriter();
        writer._length = 0;
        writer._overflowed = false;
        return writer;
    }

    /// <summary>What was written since <see cref="Begin"/>.</summary>
    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    /// <summary>True when the values did not fit in <see cref="HitLayout.MaxDataBytes"/>: the hit must not be sent.</summary>
    public bool Overflowed => _overflowed;

    /// <summary>The kind a parameter or return type declared as <paramref name="type"/> (as the catalog spells it) is read as.</summary>
    public static Kind KindOf(string? type) => type switch
    {
        "bool" or "System.Boolean" => Kind.Boolean,
        "sbyte" or "System.SByte" => Kind.SByte,
        "byte" or "System.Byte" => Kind.Byte,
        "short" or "System.Int16" => Kind.Int16,
        "ushort" or "System.UInt16" => Kind.UInt16,
        "int" or "System.Int32" => Kind.Int32,
        "uint" or "System.UInt32" => Kind.UInt32,
        "long" or "System.Int64" => Kind.Int64,
        "ulong" or "System.UInt64" => Kind.UInt64,
        "float" or "System.Single" => Kind.Single,
        "double" or "System.Double" => Kind.Double,
        "decimal" or "System.Decimal" => Kind.Decimal,
        "char" or "System.Char" => Kind.Char,
        "string" or "System.String" => Kind.String,
        _ => Kind.Boxed,
    };

    /// <summary>The argument count and every argument, redacted ones as <see cref="HitValueTag.Redacted"/>.</summary>
    public void WriteArguments(in ProbeHit hit, Kind[] kinds)
    {
        int count = hit.ArgumentCount;
        WriteByte((byte)count);
        for (int i = 0; i < count; i++)
        {
            if (hit.Probe.IsArgumentRedacted(i))
                WriteTag(HitValueTag.Redacted);
            else if (i >= kinds.Length || !TryWriteArgument(in hit, i, kinds[i]))
                WriteValue(hit.GetArgument(i), depth: 0);
        }
    }

    /// <summary>A return hit's value: absent without one, redacted when the probe says so.</summary>
    public void WriteReturn(in ProbeHit hit, Kind kind)
    {
        if (!hit.HasReturnValue)
            WriteTag(HitValueTag.Absent);
        else if (hit.Probe.ReturnRedacted)
            WriteTag(HitValueTag.Redacted);
        else if (!TryWriteReturn(in hit, kind))
            WriteValue(hit.ReturnValue, depth: 0);
    }

    /// <summary>A return hit's exception text, or absent.</summary>
    public void WriteException(string? text)
    {
        if (text is null)
            WriteTag(HitValueTag.Absent);
        else
            WriteString(text, clip: false);
    }

    private bool TryWriteArgument(in ProbeHit hit, int i, Kind kind)
    {
        switch (kind)
        {
            case Kind.Boolean when hit.TryGetArgument(i, out bool b): WriteTag(b ? HitValueTag.True : HitValueTag.False); return true;
            case Kind.SByte when hit.TryGetArgument(i, out sbyte v): WriteInt8(v); return true;
            case Kind.Byte when hit.TryGetArgument(i, out byte v): WriteUInt8(v); return true;
            case Kind.Int16 when hit.TryGetArgument(i, out short v): WriteInt16(v); return true;
            case Kind.UInt16 when hit.TryGetArgument(i, out ushort v): WriteUInt16(v); return true;
            case Kind.Int32 when hit.TryGetArgument(i, out int v): WriteInt32(v); return true;
            case Kind.UInt32 when hit.TryGetArgument(i, out uint v): WriteUInt32(v); return true;
            case Kind.Int64 when hit.TryGetArgument(i, out long v): WriteInt64(v); return true;
            case Kind.UInt64 when hit.TryGetArgument(i, out ulong v): WriteUInt64(v); return true;
            case Kind.Single when hit.TryGetArgument(i, out float v) && float.IsFinite(v): WriteSingle(v); return true;
            case Kind.Double when hit.TryGetArgument(i, out double v) && double.IsFinite(v): WriteDouble(v); return true;
            case Kind.Decimal when hit.TryGetArgument(i, out decimal v): WriteDecimal(v); return true;
            case Kind.Char when hit.TryGetArgument(i, out char v): WriteString(new ReadOnlySpan<char>(in v), clip: true); return true;
            case Kind.String when hit.TryGetArgument(i, out string? v):
                if (v is null)
                    WriteTag(HitValueTag.Null);
                else
                    WriteString(v, clip: true);
                return true;
            default: return false;
        }
    }

    private bool TryWriteReturn(in ProbeHit hit, Kind kind)
    {
        switch (kind)
        {
            case Kind.Boolean when hit.TryGetReturnValue(out bool b): WriteTag(b ? HitValueTag.True : HitValueTag.False); return true;
            case Kind.Int32 when hit.TryGetReturnValue(out int v): WriteInt32(v); return true;
            case Kind.Int64 when hit.TryGetReturnValue(out long v): WriteInt64(v); return true;
            case Kind.Double when hit.TryGetReturnValue(out double v) && double.IsFinite(v): WriteDouble(v); return true;
            case Kind.Decimal when hit.TryGetReturnValue(out decimal v): WriteDecimal(v); return true;
            case Kind.String when hit.TryGetReturnValue(out string? v):
                if (v is null)
                    WriteTag(HitValueTag.Null);
                else
                    WriteString(v, clip: true);
                return true;
            default: return false;
        }
    }

    /// <summary>Any value, as the JSON text did it: collections as arrays (two levels), anything unknown as its text.</summary>
    private void WriteValue(object? value, int depth)
    {
        // Only materialized collections: enumerating a lazy sequence would run the app's code again.
        if (value is System.Collections.ICollection items && depth < HitLayout.MaxArrayDepth)
        {
            WriteTag(HitValueTag.Array);
            int countAt = _length;
            WriteRaw<ushort>(0);
            int written = 0;
            foreach (object? item in items)
            {
                if (written == HitLayout.MaxElements)
                    break;
                WriteValue(item, depth + 1);
                written++;
            }
            int elements = written;
            if (items.Count > written)
            {
                WriteString(string.Create(CultureInfo.InvariantCulture, $"... {items.Count - written} more"), clip: true);
                elements++;
            }
            if (!_overflowed)
                BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(countAt), (ushort)elements);
            return;
        }
        switch (value)
        {
            case null: WriteTag(HitValueTag.Null); break;
            case bool b: WriteTag(b ? HitValueTag.True : HitValueTag.False); break;
            case string s: WriteString(s, clip: true); break;
            case int i: WriteInt32(i); break;
            case long l: WriteInt64(l); break;
            case short s16: WriteInt16(s16); break;
            case byte u8: WriteUInt8(u8); break;
            case sbyte i8: WriteInt8(i8); break;
            case uint u32: WriteUInt32(u32); break;
            case ulong u64: WriteUInt64(u64); break;
            case ushort u16: WriteUInt16(u16); break;
            case decimal m: WriteDecimal(m); break;
            case double d when double.IsFinite(d): WriteDouble(d); break;
            case float f when float.IsFinite(f): WriteSingle(f); break;
            case Enum e: WriteString(e.ToString(), clip: true); break;
            case char c: WriteString(new ReadOnlySpan<char>(in c), clip: true); break;
            default: WriteString(TextOf(value), clip: true); break;
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

    /// <summary>A string value; clipped ones end with <c>...(N more chars)</c>.</summary>
    private void WriteString(ReadOnlySpan<char> text, bool clip)
    {
        Span<char> tail = stackalloc char[48];
        int tailLength = 0;
        if (clip && text.Length > HitLayout.MaxStringChars)
        {
            tail[0] = tail[1] = tail[2] = '.';
            tail[3] = '(';
            (text.Length - HitLayout.MaxStringChars).TryFormat(tail[4..], out int digits, default, CultureInfo.InvariantCulture);
            tailLength = 4 + digits;
            " more chars)".CopyTo(tail[tailLength..]);
            tailLength += " more chars)".Length;
            text = text[..HitLayout.MaxStringChars];
        }
        WriteTag(HitValueTag.String);
        WriteRaw(text.Length + tailLength);
        WriteChars(text);
        WriteChars(tail[..tailLength]);
    }

    private void WriteChars(ReadOnlySpan<char> chars)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("the hit encoding assumes a little-endian machine");
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(chars);
        if (Reserve(bytes.Length) is int at)
            bytes.CopyTo(_buffer.AsSpan(at));
    }

    private void WriteDecimal(decimal value)
    {
        WriteTag(HitValueTag.Decimal);
        Span<int> bits = stackalloc int[4];
        decimal.GetBits(value, bits);
        foreach (int part in bits)
            WriteRaw(part);
    }

    private void WriteInt8(sbyte v) { WriteTag(HitValueTag.Int8); WriteByte((byte)v); }
    private void WriteUInt8(byte v) { WriteTag(HitValueTag.UInt8); WriteByte(v); }
    private void WriteInt16(short v) { WriteTag(HitValueTag.Int16); WriteRaw(v); }
    private void WriteUInt16(ushort v) { WriteTag(HitValueTag.UInt16); WriteRaw(v); }
    private void WriteInt32(int v) { WriteTag(HitValueTag.Int32); WriteRaw(v); }
    private void WriteUInt32(uint v) { WriteTag(HitValueTag.UInt32); WriteRaw(v); }
    private void WriteInt64(long v) { WriteTag(HitValueTag.Int64); WriteRaw(v); }
    private void WriteUInt64(ulong v) { WriteTag(HitValueTag.UInt64); WriteRaw(v); }
    private void WriteSingle(float v) { WriteTag(HitValueTag.Single); WriteRaw(v); }
    private void WriteDouble(double v) { WriteTag(HitValueTag.Double); WriteRaw(v); }

    private void WriteTag(HitValueTag tag) => WriteByte((byte)tag);

    private void WriteByte(byte value)
    {
        if (Reserve(1) is int at)
            _buffer[at] = value;
    }

    /// <summary>A primitive in the machine's byte order, which <see cref="WriteChars"/> checks is little-endian.</summary>
    private void WriteRaw<T>(T value) where T : unmanaged
    {
        if (Reserve(System.Runtime.CompilerServices.Unsafe.SizeOf<T>()) is int at)
            MemoryMarshal.Write(_buffer.AsSpan(at), in value);
    }

    /// <summary>Room for <paramref name="size"/> more bytes: their offset, or null once the payload is over its bound.</summary>
    private int? Reserve(int size)
    {
        if (_overflowed)
            return null;
        int at = _length;
        if (at + size > _buffer.Length)
        {
            if (at + size > HitLayout.MaxDataBytes)
            {
                _overflowed = true;
                return null;
            }
            Array.Resize(ref _buffer, Math.Min(HitLayout.MaxDataBytes, Math.Max(_buffer.Length * 2, at + size)));
        }
        _length = at + size;
        return at;
    }
}
