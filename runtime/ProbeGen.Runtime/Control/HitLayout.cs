namespace ProbeGen.Control;

/// <summary>
/// The wire layout of a trace session's <see cref="ControlProtocol.BindEvent"/> and
/// <see cref="ControlProtocol.HitEvent"/>, for both sides: the target writes it, <c>probegen</c>
/// and any reader of a saved <c>.nettrace</c> decode it with <see cref="HitPayloadReader"/>.
/// </summary>
/// <remarks>
/// <para><b>Bind</b> (<c>Index</c> int32, <c>Probe</c> string, <c>Kind</c> string, <c>Parameters</c>
/// string): the session numbers each probe it binds, from 0, and says so once, before the first hit
/// of that probe. A probe bound later (an assembly loaded after the session started) gets its Bind
/// then. <c>Kind</c> is <c>static</c> or <c>method</c>; <c>Parameters</c> holds the parameter names,
/// one per line.</para>
/// <para><b>Hit</b>: fixed fields, then one byte array, all little-endian and packed, at the offsets
/// below: <c>Probe</c> int32 (a Bind's index), <c>Point</c> uint8 (<see cref="ProbePoint"/>),
/// <c>ThreadId</c> int32, <c>Timestamp</c> int64 (Unix nanoseconds), <c>ElapsedNs</c> int64 (0 but
/// for a return), <c>Data</c> (an int32 byte count, then the bytes, as EventSource lays out a
/// <c>byte[]</c>).</para>
/// <para><b>Data</b>: a uint8 argument count N, then N values; for a return, one more value (the
/// return value, or <see cref="HitValueTag.Absent"/> for a void method or one that threw), then the
/// exception (<see cref="HitValueTag.Absent"/>, or a string <c>Type.FullName: message</c> with
/// redacted argument text scrubbed).</para>
/// <para><b>A value</b> is a <see cref="HitValueTag"/> byte and its payload: nothing for
/// absent, null, false, true and redacted (printed as <see cref="ProbeRedaction.Placeholder"/>);
/// the integer or IEEE value itself for the numeric tags (a double or float is finite: the target
/// sends a non-finite one as its text); a decimal as the four int32 of
/// <see cref="decimal.GetBits(decimal)"/>; a string as an int32 UTF-16 code unit count and the code
/// units; an array as a uint16 count and that many values, nested at most
/// <see cref="MaxArrayDepth"/> deep. The target applies the same rules as the JSON it used to build:
/// strings clipped to <see cref="MaxStringChars"/> with a <c>...(N more chars)</c> tail, at most
/// <see cref="MaxElements"/> elements with a <c>... N more</c> string after them, other objects as
/// their invariant text.</para>
/// <para>A hit whose Data would exceed <see cref="MaxDataBytes"/> is not sent and counts as dropped:
/// EventPipe would otherwise discard an event over 64 KB without counting it.</para>
/// <para><b>HitBatch</b> (<c>Batch</c> int32, <c>First</c> int64, <c>Count</c> int32, <c>Records</c>
/// byte array): <c>Count</c> hits, each laid out exactly as a Hit event's payload, one after the
/// other. Each thread of the target fills its own batch and writes it as one event when it is
/// full, when its first hit is <see cref="BatchMaxAgeMilliseconds"/> old, and on every heartbeat,
/// flush and process exit: one EventPipe write then carries many hits. <c>Batch</c> names the
/// thread's batch within the session and <c>First</c> numbers its first record (a batch's records
/// are numbered from 0), so a reader that sees a gap in a batch's numbers knows exactly how many
/// hits EventPipe lost with the missing events.</para>
/// </remarks>
public static class HitLayout
{
    /// <summary>Byte offset of the int32 probe index.</summary>
    public const int ProbeOffset = 0;

    /// <summary>Byte offset of the uint8 point.</summary>
    public const int PointOffset = 4;

    /// <summary>Byte offset of the int32 managed thread id.</summary>
    public const int ThreadIdOffset = 5;

    /// <summary>Byte offset of the int64 Unix-nanosecond timestamp.</summary>
    public const int TimestampOffset = 9;

    /// <summary>Byte offset of the int64 elapsed nanoseconds.</summary>
    public const int ElapsedOffset = 17;

    /// <summary>Byte offset of the int32 length of Data.</summary>
    public const int DataLengthOffset = 25;

    /// <summary>Byte offset of Data itself; also the size of the fixed part.</summary>
    public const int DataOffset = 29;

    /// <summary>Byte offset of a HitBatch's int32 batch number.</summary>
    public const int BatchOffset = 0;

    /// <summary>Byte offset of a HitBatch's int64 number of its first record.</summary>
    public const int BatchFirstOffset = 4;

    /// <summary>Byte offset of a HitBatch's int32 record count.</summary>
    public const int BatchCountOffset = 12;

    /// <summary>Byte offset of the int32 length of a HitBatch's records.</summary>
    public const int BatchRecordsLengthOffset = 16;

    /// <summary>Byte offset of a HitBatch's records; also the size of its fixed part.</summary>
    public const int BatchRecordsOffset = 20;

    /// <summary>
    /// The most record bytes a batch gathers before it is written: large enough that one write
    /// carries a few hundred typical hits, well under EventPipe's 64 KB limit per event.
    /// </summary>
    public const int BatchBytes = 16 * 1024;

    /// <summary>How long a thread that keeps hitting may hold a hit in its batch before writing it.</summary>
    public const int BatchMaxAgeMilliseconds = 10;

    /// <summary>The largest Data a target sends.</summary>
    public const int MaxDataBytes = 32 * 1024;

    /// <summary>The longest string sent per value, before its <c>...(N more chars)</c> tail.</summary>
    public const int MaxStringChars = 1024;

    /// <summary>The most elements of a collection sent per value; the rest are elided with a count.</summary>
    public const int MaxElements = 64;

    /// <summary>How deep arrays nest: an argument's collection, and collections in it.</summary>
    public const int MaxArrayDepth = 2;
}

/// <summary>The type tag in front of every value of a hit's Data (see <see cref="HitLayout"/>).</summary>
public enum HitValueTag : byte
{
    /// <summary>No value: a void method's return, or no exception.</summary>
    Absent = 0,

    /// <summary>null.</summary>
    Null = 1,

    /// <summary>false.</summary>
    False = 2,

    /// <summary>true.</summary>
    True = 3,

    /// <summary>A redacted value, printed as <see cref="ProbeRedaction.Placeholder"/>.</summary>
    Redacted = 4,

    /// <summary>sbyte, 1 byte.</summary>
    Int8 = 5,

    /// <summary>byte, 1 byte.</summary>
    UInt8 = 6,

    /// <summary>short, 2 bytes.</summary>
    Int16 = 7,

    /// <summary>ushort, 2 bytes.</summary>
    UInt16 = 8,

    /// <summary>int, 4 bytes.</summary>
    Int32 = 9,

    /// <summary>uint, 4 bytes.</summary>
    UInt32 = 10,

    /// <summary>long, 8 bytes.</summary>
    Int64 = 11,

    /// <summary>ulong, 8 bytes.</summary>
    UInt64 = 12,

    /// <summary>A finite float, 4 bytes.</summary>
    Single = 13,

    /// <summary>A finite double, 8 bytes.</summary>
    Double = 14,

    /// <summary>decimal, the four int32 of <see cref="decimal.GetBits(decimal)"/>.</summary>
    Decimal = 15,

    /// <summary>A string: an int32 count of UTF-16 code units, then the code units.</summary>
    String = 16,

    /// <summary>An array: a uint16 count, then that many values.</summary>
    Array = 17,
}
