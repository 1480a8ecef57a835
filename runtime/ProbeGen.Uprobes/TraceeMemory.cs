using System;
using static ProbeGen.Uprobes.Ptrace;

namespace ProbeGen.Uprobes;

/// <summary>
/// A tracee's memory and registers through ptrace. Every call goes through a thread in a
/// ptrace-stop, and only from the tracer thread; memory is shared by every thread of the process,
/// so any stopped one will do.
/// </summary>
internal static unsafe class TraceeMemory
{
    public static ulong PeekWord(int tid, ulong address) => (ulong)Call(PeekData, tid, (nint)address, 0);

    public static void PokeWord(int tid, ulong address, ulong word) => Call(PokeData, tid, (nint)address, (nint)word);

    /// <summary>Reads <paramref name="count"/> bytes, rounded up to whole words.</summary>
    public static byte[] ReadBytes(int tid, ulong address, int count)
    {
        var bytes = new byte[(count + 7) & ~7];
        for (int i = 0; i < bytes.Length; i += 8)
            BitConverter.GetBytes(PeekWord(tid, address + (ulong)i)).CopyTo(bytes, i);
        return bytes;
    }

    /// <summary>Writes <paramref name="bytes"/>, padded with zeros to whole words: only for memory the engine owns.</summary>
    public static void WriteBytes(int tid, ulong address, byte[] bytes)
    {
        var padded = new byte[(bytes.Length + 7) & ~7];
        bytes.CopyTo(padded, 0);
        for (int i = 0; i < padded.Length; i += 8)
            PokeWord(tid, address + (ulong)i, BitConverter.ToUInt64(padded, i));
    }

    /// <summary>Writes exactly <paramref name="bytes"/>, keeping the bytes around them: for the program's own code.</summary>
    public static void WriteExact(int tid, ulong address, ReadOnlySpan<byte> bytes)
    {
        ulong first = address & ~7UL;
        int lead = (int)(address - first);
        byte[] words = ReadBytes(tid, first, lead + bytes.Length);
        bytes.CopyTo(words.AsSpan(lead));
        for (int i = 0; i < words.Length; i += 8)
            PokeWord(tid, first + (ulong)i, BitConverter.ToUInt64(words, i));
    }

    /// <summary>The thread's registers; false when it cannot be read (it has gone).</summary>
    public static bool TryGetRegisters(int tid, out Regs regs)
    {
        Regs read;
        bool ok = Call(GetRegs, tid, 0, (nint)(&read)) == 0;
        regs = read;
        return ok;
    }

    /// <summary>The thread's registers, whatever the call returned (zeros if it has gone).</summary>
    public static Regs GetRegisters(int tid)
    {
        Regs regs;
        Call(GetRegs, tid, 0, (nint)(&regs));
        return regs;
    }

    public static void SetRegisters(int tid, Regs regs) => Call(SetRegs, tid, 0, (nint)(&regs));
}
