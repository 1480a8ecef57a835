using System;
using System.Buffers;

namespace ProbeGen.Cli.Target;

/// <summary>
/// Output lines accumulated as UTF-8 before one write: the buffer a Utf8JsonWriter writes hits into.
/// Unlike ArrayBufferWriter it can drop a half-written line (<see cref="Truncate"/>), for a hit that
/// turned out malformed in the middle.
/// </summary>
internal sealed class Utf8Lines : IBufferWriter<byte>
{
    private byte[] _buffer = new byte[64 * 1024];

    /// <summary>Bytes written so far.</summary>
    public int Count { get; private set; }

    /// <summary>The bytes written so far.</summary>
    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, Count);

    /// <summary>Forgets everything after the first <paramref name="count"/> bytes.</summary>
    public void Truncate(int count) => Count = Math.Min(Count, count);

    /// <summary>Ends the current line.</summary>
    public void NewLine()
    {
        GetSpan(1)[0] = (byte)'\n';
        Advance(1);
    }

    public void Advance(int count)
    {
        if (count < 0 || Count + count > _buffer.Length)
            throw new ArgumentOutOfRangeException(nameof(count));
        Count += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(Count);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(Count);
    }

    private void Ensure(int sizeHint)
    {
        int needed = Math.Max(sizeHint, 256);
        if (_buffer.Length - Count < needed)
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Count + needed));
    }
}
