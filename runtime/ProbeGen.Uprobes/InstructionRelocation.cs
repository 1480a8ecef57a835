using System;
using System.Collections.Generic;
using Iced.Intel;

namespace ProbeGen.Uprobes;

/// <summary>The displaced instruction, re-encoded for its slot in the out-of-line area, followed by a jump back.</summary>
/// <param name="Code">The bytes to write at the slot.</param>
/// <param name="RelocatedLength">How many of them are the instruction: the jump back starts there.</param>
/// <param name="NextIp">The address of the instruction after the displaced one, where the jump back lands.</param>
internal readonly record struct RelocatedInstruction(byte[] Code, int RelocatedLength, ulong NextIp);

/// <summary>
/// Prepares the instruction under a breakpoint to run out of line, like the kernel's
/// <c>arch_uprobe_analyze_insn</c>: decodes it with Iced and re-encodes it for another address,
/// so relative branches and RIP-relative operands still reach their targets.
/// </summary>
internal static class InstructionRelocation
{
    /// <summary>Relocates the instruction at the start of <paramref name="original"/> (read at <paramref name="address"/>) to <paramref name="slot"/>.</summary>
    /// <exception cref="UprobeException">No valid instruction there, or it cannot run at the slot.</exception>
    public static RelocatedInstruction Relocate(UprobeSpec spec, string path, ulong offset, byte[] original, ulong address, ulong slot)
    {
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(original));
        decoder.IP = address;
        decoder.Decode(out Instruction instruction);
        if (instruction.IsInvalid)
            throw new UprobeException($"{spec.Text}: no valid instruction at file offset 0x{offset:x}");
        // Far from the module, only an instruction that neither branches nor addresses memory
        // relative to rip keeps its meaning: the 32-bit displacements would not reach.
        bool near = (long)(slot - address) is > -0x7000_0000 and < 0x7000_0000;
        if (!near && (instruction.FlowControl != FlowControl.Next || instruction.IsIPRelativeMemoryOperand))
            throw new UprobeException($"{spec.Text}: '{instruction}' cannot run out of line: no scratch page could be mapped within 2 GB of {path}");
        var relocated = new List<byte>();
        if (!BlockEncoder.TryEncode(64, new InstructionBlock(new ListWriter(relocated), [instruction], slot), out string? error, out _))
            throw new UprobeException($"{spec.Text}: cannot relocate '{instruction}' to the scratch page: {error}");
        int relocatedLength = relocated.Count;
        ulong next = address + (ulong)instruction.Length;
        // jmp [rip+0]; dq next: back to the instruction after the displaced one.
        relocated.AddRange([0xFF, 0x25, 0, 0, 0, 0]);
        relocated.AddRange(BitConverter.GetBytes(next));
        return new RelocatedInstruction(relocated.ToArray(), relocatedLength, next);
    }

    private sealed class ListWriter(List<byte> bytes) : CodeWriter
    {
        public override void WriteByte(byte value) => bytes.Add(value);
    }
}
