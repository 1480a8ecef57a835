using System.Collections.Generic;
using System.Linq;
using static ProbeGen.Uprobes.Ptrace;
using static ProbeGen.Uprobes.TraceeMemory;

namespace ProbeGen.Uprobes;

/// <summary>
/// Launch mode's temporary int3 at the image's entry point, for the backends that write into the
/// tracee. The probes go in when a thread reaches it: the dynamic loader has then mapped every
/// needed library and none of the program's own code has run. An image that does not map the
/// probed binaries (a wrapper such as env) is left to run, and the next one's entry is armed.
/// Used on the tracer thread only.
/// </summary>
internal sealed class LaunchEntry(IReadOnlyCollection<ulong> inodes)
{
    private ulong _address;
    private byte _original;

    /// <summary>Whether the armed entry point is at <paramref name="address"/>.</summary>
    public bool IsAt(ulong address) => _address != 0 && address == _address;

    /// <summary>Arms the entry point of the image <paramref name="tid"/> now runs.</summary>
    public void Arm(int tid)
    {
        if (inodes.Count == 0)
            return;
        _address = EntryPoint(tid);
        _original = Breakpoints.PlantByte(tid, _address);
    }

    /// <summary>The image went away (an exec): its int3 went with it.</summary>
    public void Forget() => _address = 0;

    /// <summary>
    /// <paramref name="tid"/> trapped at the armed entry point: puts the byte back and rewinds the
    /// thread onto it. True when this image maps every probed binary, so the probes go in now.
    /// </summary>
    public bool Reached(int tid, Regs regs)
    {
        Breakpoints.RestoreByte(tid, _address, _original);
        regs.Rip = _address;
        SetRegisters(tid, regs);
        _address = 0;
        var mapped = ReadMappings(tid).Select(m => m.Inode).ToHashSet();
        return inodes.All(mapped.Contains);
    }
}
