using System;
using System.Runtime.CompilerServices;
using System.Threading;

namespace ProbeGen.Uprobes.Jump;

/// <summary>
/// The ring the jump backend's trampolines write hit records into, in memory the target and the
/// tracer both map. Producers are the target's threads, inside trampolines; the one consumer is
/// the tracer (<see cref="JumpRingMemory"/>). Nothing in it ever blocks a producer: a full ring counts a drop.
/// </summary>
/// <remarks>
/// <para><b>Layout.</b> Three counters, each on a cache line of its own, then the records:</para>
/// <list type="bullet">
/// <item><see cref="HeadOffset"/>: the next ticket. A producer reserves ticket t with
/// <c>lock cmpxchg</c>, only while <c>t - tail &lt; capacity</c>, so it never overwrites a record
/// the consumer has not read.</item>
/// <item><see cref="TailOffset"/>: the next ticket the consumer reads. Only the consumer writes it
/// (<see cref="Drain"/>); producers read it to see whether there is room.</item>
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
    /// <param name="ring">The ring's memory, <see cref="Size"/> bytes.</param>
    /// <param name="capacity">Records.</param>
    /// <param name="zeroed">The memory is known to be all zeros (a new memfd): only the capacity is written.</param>
    public static void Initialize(byte* ring, int capacity, bool zeroed = false)
    {
        if (capacity <= 0 || (capacity & (capacity - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "a ring holds a power of two of records");
        if (zeroed)
        {
            *(long*)(ring + CapacityOffset) = capacity;
            return;
        }
        new Span<byte>(ring, RecordsOffset).Clear();
        *(long*)(ring + CapacityOffset) = capacity;
        // A commit word of 0 never matches the ticket + 1 the consumer waits for.
        for (long i = 0; i < capacity; i++)
            *(long*)(ring + RecordsOffset + i * RecordSize) = 0;
    }

    /// <summary>Hits that found the ring full.</summary>
    public static long Dropped(byte* ring) => Volatile.Read(ref *(long*)(ring + DroppedOffset));

    /// <summary>
    /// Hands each complete record from ticket <paramref name="tail"/> on to
    /// <paramref name="handler"/>, in place, at most <paramref name="max"/> of them, then frees
    /// their slots. Only the consumer calls it, one call at a time.
    /// </summary>
    /// <param name="ring">The consumer's view of the ring.</param>
    /// <param name="capacity">The capacity the consumer made the ring with: never the one in the ring, which the target can overwrite.</param>
    /// <param name="tail">The consumer's own copy of the tail, advanced past the records handled; the ring's tail word is only published from it, so nothing the target writes there moves the consumer.</param>
    /// <param name="max">The most records to hand over.</param>
    /// <param name="handler">Called with each record's address; it must copy what it keeps: the slot is free once this returns.</param>
    /// <returns>How many records were handed over.</returns>
    public static int Drain<THandler>(byte* ring, int capacity, ref long tail, int max, ref THandler handler)
        where THandler : struct, IJumpRecordHandler
    {
        long next = tail;
        int done = 0;
        for (; done < max; done++, next++)
        {
            byte* slot = ring + RecordsOffset + (next & (capacity - 1)) * RecordSize;
            // Acquire: pairs with the trampoline's store of the commit word, its last store to the
            // record (x86 keeps stores in order, so that plain store releases the fields before it).
            if (Volatile.Read(ref *(long*)(slot + CommitOffset)) != next + 1)
                break;  // not written yet (reserved, or the ring is empty): next time
            handler.Handle(slot);
        }
        if (done > 0)
        {
            tail = next;
            // Release: every read of the slots above happens before a producer can see them free;
            // pairs with the trampoline's load of the tail before its lock cmpxchg takes a ticket.
            Volatile.Write(ref *(long*)(ring + TailOffset), next);
        }
        return done;
    }

    /// <summary>
    /// Reads the next record if it is complete, and frees its slot: <see cref="Drain"/> for one
    /// record, with the capacity and the tail taken from the ring (a ring of this process's own).
    /// </summary>
    public static bool TryRead(byte* ring, out JumpRecord record)
    {
        long tail = *(long*)(ring + TailOffset);
        var copy = new CopyRecord();
        bool read = Drain(ring, (int)*(long*)(ring + CapacityOffset), ref tail, 1, ref copy) == 1;
        record = copy.Record;
        return read;
    }

    /// <summary>Copies one record out of its slot.</summary>
    private struct CopyRecord : IJumpRecordHandler
    {
        public JumpRecord Record;

        public void Handle(byte* slot) => Record = new JumpRecord(
            *(uint*)(slot + ProbeOffset),
            *(int*)(slot + ThreadOffset),
            *(long*)(slot + TimestampOffset),
            new ReadOnlySpan<long>(slot + RegistersOffset, 6).ToArray(),
            ReadString(slot + StringOffset));
    }

    /// <summary>The record's string up to its NUL; the trampoline always writes one, so a missing NUL means a damaged record and the whole area is taken.</summary>
    public static string ReadString(byte* bytes)
    {
        var span = new ReadOnlySpan<byte>(bytes, StringBytes);
        int end = span.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end < 0 ? span : span[..end]);
    }
}

/// <summary>What <see cref="JumpRing.Drain"/> does with each record, in place (a struct, so the call is direct).</summary>
internal unsafe interface IJumpRecordHandler
{
    /// <summary>Handles the record at <paramref name="record"/>; its fields come from the target and are untrusted.</summary>
    void Handle(byte* record);
}

/// <summary>One hit, as a trampoline recorded it.</summary>
/// <param name="Probe">The probe's id in its session.</param>
/// <param name="ThreadId">The thread that hit it.</param>
/// <param name="Timestamp">The time stamp counter at the hit.</param>
/// <param name="Registers">rdi, rsi, rdx, rcx, r8, r9 at the hit.</param>
/// <param name="Text">The string the probe asked for, cut to fit the record; empty when it could not be read (meaningless when it asked for none: that area is not written).</param>
internal readonly record struct JumpRecord(uint Probe, int ThreadId, long Timestamp, long[] Registers, string Text);
