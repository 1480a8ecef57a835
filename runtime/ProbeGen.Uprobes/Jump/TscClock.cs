using System;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ProbeGen.Uprobes.Jump;

/// <summary>
/// Turns the time stamp counter values the trampolines record into Unix time. The counter is
/// read here too, through a four-instruction stub, next to the wall clock: once at the start, and
/// again whenever a conversion is of a counter value more than a second past the last pair, so the rate is measured
/// over a longer and longer span. It assumes an invariant counter, the same on every core, as
/// every x86-64 processor of the last fifteen years has.
/// </summary>
internal sealed unsafe class TscClock
{
    private readonly delegate* unmanaged<long> _read = CreateStub();
    private readonly long _startCounter;
    private readonly long _startUnixNs;
    private double _nsPerTick;

    /// <summary>The counter value after which the next conversion calibrates again: the counter of the hit is the clock, so checking it costs nothing.</summary>
    private long _nextCalibration;

    public TscClock()
    {
        _startCounter = _read();
        _startUnixNs = UnixNow();
        // A first rate from a short span, refined as the session runs.
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < 20)
        {
        }
        Calibrate();
    }

    /// <summary>Unix time in nanoseconds for a counter value read in the traced process.</summary>
    public long ToUnixNanoseconds(long counter)
    {
        if (counter > _nextCalibration)
            Calibrate();
        return _startUnixNs + (long)((counter - _startCounter) * _nsPerTick);
    }

    private void Calibrate()
    {
        long counter = _read();
        long now = UnixNow();
        if (counter > _startCounter)
            _nsPerTick = (double)(now - _startUnixNs) / (counter - _startCounter);
        // About a second from now, at the rate measured so far.
        _nextCalibration = counter + (long)(1e9 / (_nsPerTick > 0 ? _nsPerTick : 1));
    }

    private static long UnixNow() => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;

    /// <summary>rdtsc; shl rdx, 32; or rax, rdx; ret, in a page of its own.</summary>
    private static delegate* unmanaged<long> CreateStub()
    {
        byte[] code = [0x0F, 0x31, 0x48, 0xC1, 0xE2, 0x20, 0x48, 0x09, 0xD0, 0xC3];
        void* page = Native.mmap(null, 4096, 3, 0x22, -1, 0);
        if ((nint)page == -1)
            throw new UprobeException("cannot map a page for the time stamp counter stub");
        Marshal.Copy(code, 0, (nint)page, code.Length);
        if (Native.mprotect(page, 4096, 5) != 0)
            throw new UprobeException("cannot make the time stamp counter stub executable");
        return (delegate* unmanaged<long>)page;
    }
}
