using System.Collections.Generic;
using System.Linq;
using static ProbeGen.Uprobes.Ptrace;
using static ProbeGen.Uprobes.TraceeMemory;

namespace ProbeGen.Uprobes;

/// <summary>A planted int3, shared by an entry and a return probe at the same place.</summary>
/// <param name="Key">The place in the file (an entry key).</param>
/// <param name="Address">Where the int3 is, in the tracee.</param>
/// <param name="OriginalByte">The byte the int3 replaced.</param>
/// <param name="Slot">Where the displaced instruction runs out of line.</param>
/// <param name="RelocatedLength">The relocated instruction's length at the slot: the jump back follows it.</param>
/// <param name="NextIp">The address of the instruction after the displaced one.</param>
internal sealed record Breakpoint(UprobeKey Key, ulong Address, byte OriginalByte, ulong Slot, int RelocatedLength, ulong NextIp);

/// <summary>A probe of a ptrace session in <see cref="UprobeRegistry"/>, and the breakpoint that fires it.</summary>
internal sealed class BreakpointProbe(UprobeKey key, UprobeSpec spec, object owner, Breakpoint breakpoint) : UprobeEntry(key, spec)
{
    /// <summary>The session that planted it: a trap only uses its own session's probes.</summary>
    public object Owner { get; } = owner;

    public Breakpoint Breakpoint { get; } = breakpoint;
}

/// <summary>
/// The breakpoints of one image of the tracee and the probes they fire, with the out-of-line area
/// their displaced instructions run in. Used only on the tracer thread.
/// </summary>
internal sealed class Breakpoints
{
    private readonly Dictionary<ulong, Breakpoint> _byAddress = [];
    private readonly List<BreakpointProbe> _probes = [];
    private XolArea? _xol;

    /// <summary>Every planted breakpoint.</summary>
    public IEnumerable<Breakpoint> All => _byAddress.Values;

    /// <summary>The return trampoline's address, 0 while nothing is planted.</summary>
    public ulong Trampoline => _xol?.Trampoline ?? 0;

    /// <summary>Whether an int3 of ours is at <paramref name="address"/>.</summary>
    public bool Contains(ulong address) => _byAddress.ContainsKey(address);

    /// <summary>
    /// With every thread stopped: maps scratch pages, relocates each displaced instruction into
    /// one, registers each probe, then writes the int3s. A module's page is mapped within 2 GB of
    /// it when it can be, so relocated branches and RIP-relative operands keep their 32-bit form.
    /// </summary>
    public void Plant(PtraceTracer tracer, object owner, IReadOnlyList<UprobeSpec> specs, IReadOnlyList<(string Path, ulong Offset)> resolved, List<Mapping> mappings)
    {
        _xol ??= new XolArea(tracer);
        for (int i = 0; i < specs.Count; i++)
        {
            UprobeSpec spec = specs[i];
            (string path, ulong offset) = resolved[i];
            ulong address = RuntimeAddress(mappings, tracer.Pid, path, offset);
            Mapping mapping = mappings.First(m => address >= m.Start && address < m.End);
            if (!_byAddress.TryGetValue(address, out Breakpoint? breakpoint))
            {
                ulong slot = _xol.NextSlot(mapping, mappings);
                byte[] original = ReadBytes(tracer.AnyStopped, address, 16);
                RelocatedInstruction relocated = InstructionRelocation.Relocate(spec, path, offset, original, address, slot);
                _xol.Fill(mapping.Inode, slot, relocated.Code, path);
                breakpoint = new Breakpoint(new UprobeKey(mapping.Device, mapping.Inode, offset, false), address, original[0], slot, relocated.RelocatedLength, relocated.NextIp);
                _byAddress[address] = breakpoint;
            }
            var probe = new BreakpointProbe(breakpoint.Key with { Return = spec.Return }, spec, owner, breakpoint);
            if (!UprobeRegistry.Probes.TryAdd(probe))
                throw new UprobeException($"{spec.Text} is already attached in this process");
            _probes.Add(probe);
        }
        // Registered first, then planted: a trap can only come from a probe the registry knows.
        foreach (Breakpoint breakpoint in _byAddress.Values)
            PlantByte(tracer.AnyStopped, breakpoint.Address);
    }

    /// <summary>Takes every probe out of the registry; the int3s stay until <see cref="RestoreAll"/>.</summary>
    public void Unregister()
    {
        foreach (BreakpointProbe probe in _probes)
            UprobeRegistry.Probes.Remove(probe);
        _probes.Clear();
    }

    /// <summary>Writes every original byte back, through stopped thread <paramref name="tid"/>.</summary>
    public void RestoreAll(int tid)
    {
        foreach (Breakpoint breakpoint in _byAddress.Values)
            RestoreByte(tid, breakpoint.Address, breakpoint.OriginalByte);
    }

    /// <summary>The traced process replaced its image: its breakpoints and out-of-line area went with the old one.</summary>
    public void ForgetImage()
    {
        Unregister();
        _byAddress.Clear();
        _xol = null;
    }

    /// <summary>Writes an int3 over one byte (breakpoints may lie closer together than a word) and returns the byte it replaced.</summary>
    public static byte PlantByte(int tid, ulong address)
    {
        ulong word = PeekWord(tid, address);
        PokeWord(tid, address, (word & ~0xFFUL) | 0xCC);
        return (byte)word;
    }

    /// <summary>Puts back the byte an int3 replaced.</summary>
    public static void RestoreByte(int tid, ulong address, byte original)
    {
        ulong word = PeekWord(tid, address);
        PokeWord(tid, address, (word & ~0xFFUL) | original);
    }
}
