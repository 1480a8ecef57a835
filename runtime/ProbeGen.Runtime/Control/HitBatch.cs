using System;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Threading;

namespace ProbeGen.Control;

/// <summary>
/// One thread's hits for one trace session, gathered to go out as one HitBatch event (see
/// <see cref="HitLayout"/>): an EventPipe write costs far more than encoding a hit, so one write
/// per few hundred hits is what lets a session keep up with a hot probe.
/// </summary>
/// <remarks>
/// The owning thread appends; the session's heartbeat, a <c>flush</c> and process exit write out
/// what a quiet thread left behind. <see cref="_busy"/> keeps them apart: the owner takes it for
/// the length of an append, uncontended but for the rare moment another thread writes the batch
/// out, and another thread writes the batch only when it gets it, never waiting on an owner it
/// could not see, except for a flush, which must not leave a hit behind.
/// </remarks>
internal sealed class HitBatch(TraceForwarder owner, int number, Thread thread)
{
    private static readonly long MaxAgeTicks = Stopwatch.Frequency * HitLayout.BatchMaxAgeMilliseconds / 1000;

    /// <summary>Hits closer together than this, <see cref="HotStreak"/> in a row, make a thread busy: 20,000 a second or more.</summary>
    private static readonly long HotTicks = Stopwatch.Frequency / 20_000;

    /// <summary>How many close hits in a row make a thread busy: a method's entry and return alone do not.</summary>
    private const int HotStreak = 8;

    /// <summary>The owner's last hit, and how many hits in a row came closer than <see cref="HotTicks"/>.</summary>
    private long _last;
    private int _streak;

    /// <summary>What a batch starts with: most threads of a quiet session only ever hold one hit at a time.</summary>
    private const int InitialBytes = 512;

    /// <summary>
    /// Grows by doubling to <see cref="HitLayout.BatchBytes"/> while the thread holds hits, and past
    /// it only for a hit larger than that, which then goes out alone.
    /// </summary>
    private byte[] _records = new byte[InitialBytes];
    private int _length, _count;

    /// <summary>The number of the first record in the buffer: records written so far.</summary>
    private long _first;

    /// <summary>When the oldest hit in the buffer happened, in Stopwatch ticks.</summary>
    private long _oldest;

    private int _busy;
    private bool _closed;

    /// <summary>The session's forwarder the batch belongs to.</summary>
    public TraceForwarder Owner { get; } = owner;

    /// <summary>The batch's number within its session, sent with every write of it.</summary>
    public int Number { get; } = number;

    /// <summary>The thread that appends to it: once it has exited and the batch is written out, the batch can go.</summary>
    public Thread Thread { get; } = thread;

    /// <summary>Hits appended so far, written or not; a hint, read without taking the batch, for the session's rate.</summary>
    public long Appended => Volatile.Read(ref _first) + Volatile.Read(ref _count);

    /// <summary>True when nothing waits to be written; a hint, read without taking the batch.</summary>
    public bool IsEmpty => Volatile.Read(ref _count) == 0;

    /// <summary>
    /// Appends one hit on the owning thread. Writes the batch first when the hit does not fit, and
    /// after it when the buffer is full, when its oldest hit is old, or when <paramref name="writeNow"/>
    /// unless this thread itself is busy: a thread that hits thousands of times a second batches at
    /// once, before its session's heartbeat sees the rate. Nothing is held when <paramref name="mayHold"/>
    /// is false (see <see cref="ExitGuard"/>). False once the batch was closed.
    /// </summary>
    public bool Append(SessionEventSource source, in HitHeader hit, ReadOnlySpan<byte> data, long now, bool writeNow, bool mayHold)
    {
        int size = HitLayout.DataOffset + data.Length;
        Enter();
        try
        {
            if (_closed)
                return false;
            _streak = now - _last < HotTicks ? Math.Min(_streak + 1, HotStreak) : 0;
            _last = now;
            bool hold = mayHold && (!writeNow || _streak >= HotStreak);
            if (size > _records.Length - _length)
            {
                if (hold && _length + size <= HitLayout.BatchBytes)
                    Array.Resize(ref _records, Math.Min(HitLayout.BatchBytes, Math.Max(_records.Length * 2, _length + size)));
                else
                    WriteUnderBusy(source);
            }
            if (size > _records.Length)
                _records = new byte[size];
            if (_count == 0)
                _oldest = now;
            WriteHeader(_records.AsSpan(_length), in hit, data.Length);
            data.CopyTo(_records.AsSpan(_length + HitLayout.DataOffset));
            _length += size;
            Volatile.Write(ref _count, _count + 1);
            if (!hold || _length > HitLayout.BatchBytes - HitLayout.DataOffset - 64 || now - _oldest >= MaxAgeTicks)
                WriteUnderBusy(source);
            return true;
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>Writes out what the batch holds, unless its owner is appending right now (it then writes the batch itself soon enough).</summary>
    public void TryWrite(SessionEventSource source)
    {
        if (IsEmpty || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
            return;
        try
        {
            WriteUnderBusy(source);
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>Writes out what the batch holds, waiting for an append in progress; with <paramref name="close"/>, takes no more hits after.</summary>
    public void Write(SessionEventSource? source, bool close)
    {
        Enter();
        try
        {
            if (source is not null)
                WriteUnderBusy(source);
            _closed |= close;
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    private void Enter()
    {
        if (Interlocked.CompareExchange(ref _busy, 1, 0) == 0)
            return;
        var spin = new SpinWait();
        do
            spin.SpinOnce(sleep1Threshold: -1);
        while (Interlocked.CompareExchange(ref _busy, 1, 0) != 0);
    }

    private void WriteUnderBusy(SessionEventSource source)
    {
        if (_count == 0)
            return;
        source.WriteBatch(Number, _first, _count, _records.AsSpan(0, _length));
        _first += _count;
        _length = 0;
        if (_records.Length > HitLayout.BatchBytes)
            _records = new byte[InitialBytes];
        Volatile.Write(ref _count, 0);
    }

    private static void WriteHeader(Span<byte> to, in HitHeader hit, int dataLength)
    {
        BinaryPrimitives.WriteInt32LittleEndian(to[HitLayout.ProbeOffset..], hit.Probe);
        to[HitLayout.PointOffset] = (byte)hit.Point;
        BinaryPrimitives.WriteInt32LittleEndian(to[HitLayout.ThreadIdOffset..], hit.ThreadId);
        BinaryPrimitives.WriteInt64LittleEndian(to[HitLayout.TimestampOffset..], hit.Timestamp);
        BinaryPrimitives.WriteInt64LittleEndian(to[HitLayout.ElapsedOffset..], hit.ElapsedNs);
        BinaryPrimitives.WriteInt32LittleEndian(to[HitLayout.DataLengthOffset..], dataLength);
    }
}
