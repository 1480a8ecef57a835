using System;
using System.Runtime.CompilerServices;
using System.Threading;

namespace ProbeGen.Uprobes.Jump;

/// <summary>
/// The ring the jump backend's trampolines write hit records into, in memory the target and the
/// tracer both map. Producers are the target's threads, inside trampolines; the one consumer is
/// the tracer. Nothing in it ever blocks a producer: a full ring counts a drop.
/// </summary>
/// <remarks>
/// <para><b>Layout.</b> Three counters, each on a cache line of its own, then the records:</para>
/// <list type="bullet">
/// <item><see cref="HeadOffset"/>: the next ticket. A producer reserves ticket t with
/// <c>lock cmpxchg</c>, only while <c>t - tail &lt; capacity</c>, so it never overwrites a record
/// the consumer has not read.</item>
/// <item><see cref="TailOffset"/>: the next ticket the consumer reads. Only the consumer writes it.</item>
/// <item><see cref="DroppedOffset"/>: hits that found the ring full (<c>lock inc</c>).</item>
/// </list>
/// <para>Record t lives in slot <c>t &amp; (capacity - 1)</c>. Its first word is written last, with
/// <c>t + 1</c>: the consumer reads a slot only once that word says the record of the ticket it
/// expects is complete. x86 keeps stores in order, so the producer's plain store of that word
/// publishes the whole record.</para>
/// </remarks>
internal static unsafe class JumpRing
{
    public const int HeadOffset = 0, TailOffset = 64, DroppedOffset = 128, CapacityOffset = 192;

    /// <summary>Where the records begin.</summary>
    public const int RecordsOffset = 256;

    /// <summary>One record: commit word, probe id, thread id, timestamp, six argument registers, and a string.</summary>
    public const int RecordSize = 128;

    public const int CommitOffset = 0, ProbeOffset = 8, ThreadOffset = 12, TimestampOffset = 16, RegistersOffset = 24, StringOffset = 72;

    /// <summary>The bytes of one string a record carries, its terminating NUL included.</summary>
    public const int StringBytes = RecordSize - StringOffset;

    /// <summary>The bytes a ring of <paramref name="capacity"/> records needs.</summary>
    public static long Size(int capacity) => RecordsOffset + (long)capacity * RecordSize;

    /// <summary>Sets up an empty ring; <paramref name="capacity"/> must be a power of two.</summary>
    public static void Initialize(byte* ring, int capacity)
    {
        if (capacity <= 0 || (capacity & (capacity - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "a ring holds a power of two of records");
        new Span<byte>(ring, RecordsOffset).Clear();
        *(long*)(ring + CapacityOffset) = capacity;
        // A commit word of 0 never matches the ticket + 1 the consumer waits for.
        for (long i = 0; i < capacity; i++)
            *(long*)(ring + RecordsOffset + i * RecordSize) = 0;
    }

    /// <summary>Hits that found the ring full.</summary>
    public static long Dropped(byte* ring) => Volatile.Read(ref *(long*)(ring + DroppedOffset));

    /// <summary>
    /// Reads the next record if it is complete, and frees its slot. Only the consumer calls it.
    /// The record's fields come from the target: the caller treats them as untrusted.
    /// </summary>
    public static bool TryRead(byte* ring, out JumpRecord record)
    {
        long capacity = *(long*)(ring + CapacityOffset);
        ref long tail = ref *(long*)(ring + TailOffset);
        long ticket = tail;
        byte* slot = ring + RecordsOffset + (ticket & (capacity - 1)) * RecordSize;
        // Acquire: the record's fields were stored before its commit word.
        if (Volatile.Read(ref *(long*)(slot + CommitOffset)) != ticket + 1)
        {
            record = default;
            return false;
        }
        record = new JumpRecord(
            *(uint*)(slot + ProbeOffset),
            *(int*)(slot + ThreadOffset),
            *(long*)(slot + TimestampOffset),
            new ReadOnlySpan<long>(slot + RegistersOffset, 6).ToArray(),
            ReadString(slot + StringOffset));
        // Release: the slot is read before a producer may reserve it again.
        Volatile.Write(ref tail, ticket + 1);
        return true;
    }

    /// <summary>The record's string up to its NUL; the trampoline always writes one, so a missing NUL means a damaged record and the whole area is taken.</summary>
    private static string ReadString(byte* bytes)
    {
        var span = new ReadOnlySpan<byte>(bytes, StringBytes);
        int end = span.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end < 0 ? span : span[..end]);
    }
}

/// <summary>One hit, as a trampoline recorded it.</summary>
/// <param name="Probe">The probe's id in its session.</param>
/// <param name="ThreadId">The thread that hit it.</param>
/// <param name="Timestamp">The time stamp counter at the hit.</param>
/// <param name="Registers">rdi, rsi, rdx, rcx, r8, r9 at the hit.</param>
/// <param name="Text">The string the probe asked for, cut to fit the record; empty when it could not be read (meaningless when it asked for none: that area is not written).</param>
internal readonly record struct JumpRecord(uint Probe, int ThreadId, long Timestamp, long[] Registers, string Text);
