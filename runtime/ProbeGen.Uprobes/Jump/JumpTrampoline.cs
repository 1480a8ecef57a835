using System;
using System.Collections.Generic;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace ProbeGen.Uprobes.Jump;

/// <summary>What one trampoline records and where it goes back to.</summary>
/// <param name="Ring">The ring's address in the target.</param>
/// <param name="Capacity">The ring's capacity in records, a power of two.</param>
/// <param name="Probe">The id written into each record.</param>
/// <param name="ThreadIdOffset">Where the thread id sits in the thread's control block (fs-relative), or -1 to ask the kernel (gettid) on every hit.</param>
/// <param name="StringRegister">The argument register (0 = rdi … 5 = r9) whose string is copied, or -1 for none.</param>
/// <param name="ProcessId">The target's pid: a string is copied with process_vm_readv on the target itself, which fails cleanly on a bad pointer instead of faulting.</param>
/// <param name="Displaced">The instructions the jump replaces, decoded at their original addresses.</param>
/// <param name="Resume">The address after the displaced instructions.</param>
/// <param name="SaveFlags">Whether the flags may be live at the probed address: never at a function's entry, where the ABI leaves them undefined.</param>
/// <param name="Registers">How many argument registers the probe reads (the rest of the record is not written: fewer cache lines per hit).</param>
internal sealed record TrampolinePlan(ulong Ring, int Capacity, uint Probe, int ThreadIdOffset, int StringRegister, int ProcessId,
    IReadOnlyList<Instruction> Displaced, ulong Resume, bool SaveFlags, int Registers = 6);

/// <summary>
/// Generates the machine code a probed function's entry jumps to: it records one hit in the ring,
/// then runs the displaced instructions (relocated) and jumps back. The tracer is not involved.
/// </summary>
/// <remarks>
/// It arrives by a <c>jmp</c>, not a <c>call</c>, so the stack is the function's own: it first
/// moves <c>rsp</c> below the 128-byte red zone the interrupted code may use, then saves every
/// register it clobbers. A full ring increments the drop counter and goes on; nothing waits.
/// </remarks>
internal static class JumpTrampoline
{
    /// <summary>The red zone the System V ABI lets leaf functions use below <c>rsp</c>.</summary>
    private const int RedZone = 128;

    private const int SysProcessVmReadv = 310, SysGettid = 186;

    /// <summary>
    /// How many records ahead a hit prefetches for writing: hits that follow each other closely
    /// then find their line already in the cache. Measured with native_jump_hit_cost (back-to-back
    /// hits): 101 ns per hit without, 37 with. A prefetch never faults, so one past the end of the
    /// ring (near a wrap) only wastes itself; one that takes a line the drainer has yet to read costs
    /// the drainer a miss, never a wrong read.
    /// </summary>
    private const int PrefetchAhead = 16;

    /// <summary>The registers saved, in push order; the argument registers are found on the stack by this order.</summary>
    private static readonly AssemblerRegister64[] Saved = [rax, rcx, rdx, rsi, rdi, r8, r9, r10, r11];

    /// <summary>Argument registers in ABI order.</summary>
    private static readonly AssemblerRegister64[] Arguments = [rdi, rsi, rdx, rcx, r8, r9];

    /// <summary>Assembles the trampoline for the address it will live at.</summary>
    /// <exception cref="UprobeException">The displaced instructions cannot be encoded there.</exception>
    public static byte[] Emit(TrampolinePlan plan, ulong address)
    {
        var a = new Assembler(64);
        Label retry = a.CreateLabel(), full = a.CreateLabel(), done = a.CreateLabel(), readString = a.CreateLabel();

        a.lea(rsp, __[rsp - RedZone]);
        if (plan.SaveFlags)
            a.pushfq();
        foreach (AssemblerRegister64 register in Saved)
            a.push(register);

        // The thread id first: the gettid fallback is a syscall, which clobbers rcx and r11.
        if (plan.ThreadIdOffset >= 0)
            a.mov(r8d, __dword_ptr.fs[plan.ThreadIdOffset]);
        else
        {
            a.mov(eax, SysGettid);
            a.syscall();
            a.mov(r8d, eax);
        }

        // Reserve a ticket: head - tail < capacity, else the ring is full. The comparison is
        // signed: a thread preempted between its loads can find the tail past the head it loaded.
        // That head is stale, the cmpxchg below fails, and the thread tries again; an unsigned
        // comparison would count the negative difference as a full ring and drop a hit.
        a.mov(r11, plan.Ring);
        a.Label(ref retry);
        a.mov(rax, __qword_ptr[r11 + JumpRing.HeadOffset]);
        a.mov(rdx, rax);
        a.sub(rdx, __qword_ptr[r11 + JumpRing.TailOffset]);
        a.cmp(rdx, plan.Capacity);
        a.jge(full);
        a.lea(rdx, __[rax + 1]);
        a.@lock.cmpxchg(__qword_ptr[r11 + JumpRing.HeadOffset], rdx);
        a.jne(retry);

        // rax = the ticket; r10 = its commit word; rcx = its slot.
        a.lea(r10, __[rax + 1]);
        a.and(rax, plan.Capacity - 1);
        a.shl(rax, 7);
        a.lea(rcx, __[r11 + rax + JumpRing.RecordsOffset]);
        a.prefetchw(__byte_ptr[rcx + PrefetchAhead * JumpRing.RecordSize]);  // the line of a hit to come
        a.mov(__dword_ptr[rcx + JumpRing.ProbeOffset], (int)plan.Probe);
        a.mov(__dword_ptr[rcx + JumpRing.ThreadOffset], r8d);
        a.rdtsc();
        a.shl(rdx, 32);
        a.or(rax, rdx);
        a.mov(__qword_ptr[rcx + JumpRing.TimestampOffset], rax);
        for (int i = 0; i < Math.Clamp(plan.Registers, 0, Arguments.Length); i++)
        {
            a.mov(rax, __qword_ptr[rsp + SavedOffset(Arguments[i])]);
            a.mov(__qword_ptr[rcx + JumpRing.RegistersOffset + 8 * i], rax);
        }
        if (plan.StringRegister >= 0)
        {
            a.mov(__byte_ptr[rcx + JumpRing.StringOffset], 0);
            a.mov(__byte_ptr[rcx + JumpRing.RecordSize - 1], 0);
            a.call(readString);
        }
        // The commit word last: x86 keeps stores in order, so the record is whole when it shows.
        a.mov(__qword_ptr[rcx + JumpRing.CommitOffset], r10);
        a.jmp(done);

        a.Label(ref full);
        a.@lock.inc(__qword_ptr[r11 + JumpRing.DroppedOffset]);

        a.Label(ref done);
        for (int i = Saved.Length - 1; i >= 0; i--)
            a.pop(Saved[i]);
        if (plan.SaveFlags)
            a.popfq();
        a.lea(rsp, __[rsp + RedZone]);
        foreach (Instruction displaced in plan.Displaced)
            a.AddInstruction(displaced);
        a.jmp(plan.Resume);

        if (plan.StringRegister >= 0)
            EmitReadString(a, ref readString, plan);

        var writer = new ByteWriter();
        if (!a.TryAssemble(writer, address, out string? error, out _, BlockEncoderOptions.None))
            throw new UprobeException($"cannot build the trampoline at 0x{address:x}: {error}");
        return writer.ToArray();
    }

    /// <summary>
    /// A subroutine (the only call the trampoline makes, on its own stack, below the red zone):
    /// copies the string the argument register points at into the slot in rcx, at most to the end
    /// of the page it starts on and never more than the record holds, with process_vm_readv on
    /// the target itself. A bad pointer makes the syscall fail and leaves the string empty.
    /// </summary>
    private static void EmitReadString(Assembler a, ref Label label, TrampolinePlan plan)
    {
        a.Label(ref label);
        // The slot and the commit word survive the syscall, which clobbers rcx, r11 and its argument registers.
        a.push(rcx);
        a.push(r10);
        // The remote iovec { pointer, length } and the local one { slot string, length }, on the stack.
        a.mov(rax, __qword_ptr[rsp + 8 + 8 + 8 + SavedOffset(Arguments[plan.StringRegister])]);
        a.mov(rdx, rax);
        a.and(rdx, 4095);
        a.mov(rsi, 4096);
        a.sub(rsi, rdx);
        a.mov(rdx, JumpRing.StringBytes - 1);
        a.cmp(rsi, rdx);
        a.cmova(rsi, rdx);
        a.push(rsi);
        a.push(rax);
        a.lea(rdx, __[rcx + JumpRing.StringOffset]);
        a.push(rsi);
        a.push(rdx);
        a.mov(edi, plan.ProcessId);
        a.mov(rsi, rsp);
        a.mov(edx, 1);
        a.lea(r10, __[rsp + 16]);
        a.mov(r8d, 1);
        a.xor(r9d, r9d);
        a.mov(eax, SysProcessVmReadv);
        a.syscall();
        a.add(rsp, 32);
        a.pop(r10);
        a.pop(rcx);
        // A failed or short read: keep what arrived, NUL-terminated (the last byte is already 0).
        Label none = a.CreateLabel();
        a.test(rax, rax);
        a.jle(none);
        a.mov(__byte_ptr[rcx + rax + JumpRing.StringOffset], 0);
        a.Label(ref none);
        a.ret();
    }

    /// <summary>Where a saved register sits above rsp after the pushes.</summary>
    private static int SavedOffset(AssemblerRegister64 register) => 8 * (Saved.Length - 1 - Array.IndexOf(Saved, register));

    /// <summary>Collects the assembler's bytes.</summary>
    private sealed class ByteWriter : CodeWriter
    {
        private readonly List<byte> _bytes = [];

        public override void WriteByte(byte value) => _bytes.Add(value);

        public byte[] ToArray() => [.. _bytes];
    }
}
