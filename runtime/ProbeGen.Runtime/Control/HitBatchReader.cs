using System;
using System.Buffers.Binary;

namespace ProbeGen.Control;

/// <summary>
/// Splits a HitBatch event's payload (see <see cref="HitLayout"/>) into its hits. The bytes come
/// from another process or a file and are not trusted: every length is checked against what is
/// left, and a record that does not fit ends the reading with <c>false</c>.
/// </summary>
public ref struct HitBatchReader
{
    private readonly ReadOnlySpan<byte> _records;
    private int _position;
    private int _read;

    private HitBatchReader(int batch, long first, int count, ReadOnlySpan<byte> records)
    {
        Batch = batch;
        First = first;
        Count = count;
        _records = records;
    }

    /// <summary>The batch's number within its session.</summary>
    public int Batch { get; }

    /// <summary>The number of the batch's first record.</summary>
    public long First { get; }

    /// <summary>How many records the batch says it holds.</summary>
    public int Count { get; }

    /// <summary>True once every record was read and no byte is left over.</summary>
    public readonly bool AtEnd => _read == Count && _position == _records.Length;

    /// <summary>Reads the fixed part of a HitBatch payload; false when it is not one.</summary>
    public static bool TryOpen(ReadOnlySpan<byte> payload, out HitBatchReader reader)
    {
        reader = default;
        if (payload.Length < HitLayout.BatchRecordsOffset)
            return false;
        int batch = BinaryPrimitives.ReadInt32LittleEndian(payload[HitLayout.BatchOffset..]);
        long first = BinaryPrimitives.ReadInt64LittleEndian(payload[HitLayout.BatchFirstOffset..]);
        int count = BinaryPrimitives.ReadInt32LittleEndian(payload[HitLayout.BatchCountOffset..]);
        int length = BinaryPrimitives.ReadInt32LittleEndian(payload[HitLayout.BatchRecordsLengthOffset..]);
        // Every record has at least its fixed part, so the count is bounded by the bytes that came.
        if (batch < 0 || first < 0 || count < 0 || length != payload.Length - HitLayout.BatchRecordsOffset || count > length / HitLayout.DataOffset)
            return false;
        reader = new HitBatchReader(batch, first, count, payload[HitLayout.BatchRecordsOffset..]);
        return true;
    }

    /// <summary>The next hit; false at the end of the batch or when the next record is malformed.</summary>
    public bool TryReadNext(out HitHeader header, out ReadOnlySpan<byte> data)
    {
        header = default;
        data = default;
        ReadOnlySpan<byte> rest = _records[_position..];
        if (_read >= Count || rest.Length < HitLayout.DataOffset)
            return false;
        int length = BinaryPrimitives.ReadInt32LittleEndian(rest[HitLayout.DataLengthOffset..]);
        if (length < 0 || length > rest.Length - HitLayout.DataOffset)
            return false;
        if (!HitPayloadReader.TryReadEvent(rest[..(HitLayout.DataOffset + length)], out header, out data))
            return false;
        _position += HitLayout.DataOffset + length;
        _read++;
        return true;
    }
}
