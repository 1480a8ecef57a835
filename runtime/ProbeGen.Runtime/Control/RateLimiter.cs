using System.Diagnostics;
using System.Threading;

namespace ProbeGen.Control;

/// <summary>A one-second window rate limiter: at most a given number of takes per window, lock-free.</summary>
internal sealed class RateLimiter(long perSecond)
{
    private long _windowStart = Stopwatch.GetTimestamp();
    private long _taken;

    /// <summary>True when one more take fits in the current window.</summary>
    public bool TryTake()
    {
        long now = Stopwatch.GetTimestamp();
        long start = Volatile.Read(ref _windowStart);
        if (now - start >= Stopwatch.Frequency && Interlocked.CompareExchange(ref _windowStart, now, start) == start)
            Interlocked.Exchange(ref _taken, 0);
        return Interlocked.Increment(ref _taken) <= perSecond;
    }
}
