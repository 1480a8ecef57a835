using System.Collections.Generic;
using ProbeGen.Uprobes;
using static ProbeGen.Uprobes.Ptrace;

namespace ProbeGen.Benchmarks;

/// <summary>
/// The peer the ptrace backend is measured against: the textbook breakpoint loop that debuggers
/// and simple tracers use. On each trap it puts the original byte back, single-steps the
/// instruction in place, and writes the int3 again: two stops and four more syscalls per hit than
/// executing out of line, and any other thread passing meanwhile runs unprobed (so the benchmark
/// target is single-threaded).
/// </summary>
internal static unsafe class NaivePtraceLoop
{
    /// <summary>Launches <paramref name="argv"/>, probes file offset <paramref name="offset"/> of <paramref name="binary"/> (reading the first argument register, as ours captures it) until it exits; returns the hits.</summary>
    /// <param name="spin">Poll before blocking, as the ptrace backend does: the same wait strategy, so only out-of-line execution differs.</param>
    public static long Run(string binary, ulong offset, IReadOnlyList<string> argv, int standardOutput, bool spin)
    {
        int Wait(int pid, int* status) => spin ? WaitPidSpinning(pid, status) : WaitPid(pid, status, Wall);

        QuietChildStops();  // as the ptrace backend does: a fair race
        int pid;
        try
        {
            pid = ProgramLauncher.SpawnToExec(argv, standardOutput, OptionTraceExec | OptionExitKill, _ => { }, out _);
        }
        catch (UprobeException ex) when (!ex.IsEnvironment)
        {
            return 0;  // it exited before its exec
        }
        ulong address = RuntimeAddress(ReadMappings(pid), pid, binary, offset);
        ulong original = (ulong)Call(PeekData, pid, (nint)address, 0);
        ulong trap = (original & ~0xFFUL) | 0xCC;
        Call(PokeData, pid, (nint)address, (nint)trap);
        Call(Cont, pid, 0, 0);
        long hits = 0;
        ulong sink = 0;
        while (true)
        {
            int status;
            if (Wait(pid, &status) != pid || !Stopped(status))
                return hits;
            int signal = (status >> 8) & 0xff;
            Regs regs;
            Call(GetRegs, pid, 0, (nint)(&regs));
            if (signal == SigTrap && regs.Rip - 1 == address)
            {
                hits++;
                sink += regs.Rdi;
                Call(PokeData, pid, (nint)address, (nint)original);
                regs.Rip = address;
                Call(SetRegs, pid, 0, (nint)(&regs));
                Call(SingleStep, pid, 0, 0);
                Wait(pid, &status);
                Call(PokeData, pid, (nint)address, (nint)trap);
                Call(Cont, pid, 0, 0);
                continue;
            }
            Call(Cont, pid, 0, (status >> 16) == 0 && signal != SigStop ? signal : 0);
        }
    }
}
