using System;
using System.Collections.Generic;
using Iced.Intel;

namespace ProbeGen.Uprobes.Jump;

/// <summary>
/// Decides whether a function's entry may be replaced by a 5-byte <c>jmp rel32</c>, and which
/// instructions the jump displaces. Nothing is written here: a refusal says why, before any byte
/// of the target changes.
/// </summary>
internal static class JumpSite
{
    /// <summary>The bytes a <c>jmp rel32</c> takes.</summary>
    public const int PatchLength = 5;

    /// <summary>
    /// The whole instructions that the jump covers, decoded at their addresses, after checking the
    /// function around them.
    /// </summary>
    /// <param name="function">The function's bytes, from its entry to the end of its ELF symbol.</param>
    /// <param name="address">The entry's address.</param>
    /// <param name="name">The function, for messages.</param>
    /// <exception cref="UprobeException">The function is too short, an instruction in the window cannot move, or the function branches into the bytes after its first.</exception>
    public static IReadOnlyList<Instruction> Analyze(ReadOnlySpan<byte> function, ulong address, string name)
    {
        if (function.Length < PatchLength)
            throw new UprobeException($"{name}: the function is {function.Length} bytes long, too short for a {PatchLength}-byte jump; use another backend");
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(function.ToArray()));
        decoder.IP = address;
        var displaced = new List<Instruction>();
        ulong end = address + (ulong)function.Length;
        ulong window = address;
        while (decoder.IP < end)
        {
            decoder.Decode(out Instruction instruction);
            if (instruction.IsInvalid)
            {
                // Data or padding after the code proper: only a problem inside the window.
                if (window < address + PatchLength)
                    throw new UprobeException($"{name}: no valid instruction at 0x{instruction.IP:x}, inside the bytes the jump would replace");
                break;
            }
            if (window < address + PatchLength)
            {
                if (instruction.FlowControl is FlowControl.Return or FlowControl.Interrupt or FlowControl.Exception)
                    throw new UprobeException($"{name}: '{instruction}' ends the function inside the {PatchLength} bytes the jump would replace; use another backend");
                displaced.Add(instruction);
                window = instruction.NextIP;
            }
            // A branch anywhere in the function that lands strictly inside the window would land
            // in the middle of the jump.
            if (instruction.FlowControl is FlowControl.ConditionalBranch or FlowControl.UnconditionalBranch or FlowControl.Call
                && instruction.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64)
            {
                ulong target = instruction.NearBranchTarget;
                if (target > address && target < window)
                    throw new UprobeException($"{name}: '{instruction}' at 0x{instruction.IP:x} branches into the bytes the jump would replace; use another backend");
            }
        }
        if (window < address + PatchLength)
            throw new UprobeException($"{name}: the function ends before {PatchLength} bytes of whole instructions; use another backend");
        return displaced;
    }
}
