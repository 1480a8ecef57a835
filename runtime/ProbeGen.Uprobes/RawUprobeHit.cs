using System;

namespace ProbeGen.Uprobes;

/// <summary>
/// One hit as the engine holds it, before anything is allocated: the registers and the string
/// bytes are read in place, for consumers that count or aggregate and keep nothing per hit.
/// </summary>
/// <remarks>
/// Valid only during the call it is passed to: the spans point into the engine's ring, whose slot
/// is reused once the handler returns. Copy what is kept (or decode it with <see cref="Spec"/>'s types).
/// </remarks>
public readonly ref struct RawUprobeHit
{
    /// <summary>A hit read in place.</summary>
    public RawUprobeHit(UprobeSpec spec, int pid, int tid, long timestampNs, ReadOnlySpan<ulong> registers, ReadOnlySpan<byte> text)
    {
        Spec = spec;
        Pid = pid;
        Tid = tid;
        TimestampNs = timestampNs;
        Registers = registers;
        Text = text;
    }

    /// <summary>The probe that was hit.</summary>
    public UprobeSpec Spec { get; }

    /// <summary>The process.</summary>
    public int Pid { get; }

    /// <summary>The thread.</summary>
    public int Tid { get; }

    /// <summary>When, in Unix nanoseconds.</summary>
    public long TimestampNs { get; }

    /// <summary>The argument registers in ABI order (rdi, rsi, rdx, rcx, r8, r9), raw; only the first <c>Spec.Types.Count</c> were recorded.</summary>
    public ReadOnlySpan<ulong> Registers { get; }

    /// <summary>The UTF-8 bytes of the probe's <c>str</c> argument, up to its NUL and cut to fit the record; empty when it has none or it could not be read.</summary>
    public ReadOnlySpan<byte> Text { get; }
}

/// <summary>Takes each hit in place (see <see cref="RawUprobeHit"/> for how long it is valid), with the same contract as a session's other consumers (see <see cref="IUprobeSession"/>).</summary>
public delegate void RawUprobeHitHandler(in RawUprobeHit hit);
