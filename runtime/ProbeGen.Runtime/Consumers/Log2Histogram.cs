using System;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Threading;

namespace ProbeGen;

/// <summary>
/// A power-of-two histogram, as bpftrace's <c>hist()</c>: one bucket for negative values, one for
/// zero, then [1, 2), [2, 4), [4, 8) and so on up to 2^63. Recording is one interlocked increment.
/// </summary>
public sealed class Log2Histogram
{
    /// <summary>Negative, zero, and one bucket per power of two from 2^0 to 2^62.</summary>
    public const int BucketCount = 65;

    /// <summary>Bucket counters. Incremented with interlocked operations by recording threads; read by anyone.</summary>
    private readonly long[] _buckets = new long[BucketCount];

    /// <summary>Counts <paramref name="value"/> in its bucket.</summary>
    public void Record(long value) => Interlocked.Increment(ref _buckets[BucketOf(value)]);

    /// <summary>The bucket that holds <paramref name="value"/>.</summary>
    public static int BucketOf(long value) =>
        value < 0 ? 0 : value == 0 ? 1 : 2 + (63 - BitOperations.LeadingZeroCount((ulong)value));

    /// <summary>The smallest value in bucket <paramref name="bucket"/> (bucket 0 holds every negative value).</summary>
    public static long LowerBound(int bucket) => bucket switch
    {
        0 => long.MinValue,
        1 => 0,
        _ => 1L << (bucket - 2),
    };

    /// <summary>The count in bucket <paramref name="bucket"/>.</summary>
    public long this[int bucket] => Volatile.Read(ref _buckets[bucket]);

    /// <summary>The total count.</summary>
    public long Count
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < BucketCount; i++)
                sum += Volatile.Read(ref _buckets[i]);
            return sum;
        }
    }

    /// <summary>A snapshot of the bucket counts.</summary>
    public long[] Snapshot()
    {
        var copy = new long[BucketCount];
        for (int i = 0; i < BucketCount; i++)
            copy[i] = Volatile.Read(ref _buckets[i]);
        return copy;
    }

    /// <summary>Renders the non-empty range of buckets as bpftrace does, with a bar of up to <paramref name="width"/> '@'.</summary>
    public string Render(int width = 52)
    {
        long[] counts = Snapshot();
        int first = Array.FindIndex(counts, c => c != 0);
        if (first < 0)
            return "(no values)" + Environment.NewLine;
        int last = Array.FindLastIndex(counts, c => c != 0);
        long max = 0;
        for (int i = first; i <= last; i++)
            max = Math.Max(max, counts[i]);
        var text = new StringBuilder();
        for (int i = first; i <= last; i++)
        {
            int bar = (int)(counts[i] * width / max);
            text.Append(CultureInfo.InvariantCulture, $"{Label(i),-20} {counts[i],8} |{new string('@', bar)}{new string(' ', width - bar)}|");
            text.AppendLine();
        }
        return text.ToString();
    }

    private static string Label(int bucket) => bucket switch
    {
        0 => "(..., 0)",
        1 => "[0]",
        2 => "[1]",
        _ => $"[{Human(LowerBound(bucket))}, {Human(LowerBound(bucket) * 2)})",
    };

    private static string Human(long value)
    {
        string[] suffixes = ["", "K", "M", "G", "T", "P", "E"];
        int unit = 0;
        ulong v = (ulong)value;
        while (v >= 1024 && v % 1024 == 0 && unit < suffixes.Length - 1)
        {
            v /= 1024;
            unit++;
        }
        return v.ToString(CultureInfo.InvariantCulture) + suffixes[unit];
    }
}
