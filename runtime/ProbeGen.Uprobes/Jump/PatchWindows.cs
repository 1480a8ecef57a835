using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using static ProbeGen.Uprobes.Ptrace;
using static ProbeGen.Uprobes.TraceeMemory;

namespace ProbeGen.Uprobes.Jump;

/// <summary>The bytes one jump will replace: from the entry to the end of the last displaced instruction.</summary>
/// <param name="Start">The function's entry, where the jump begins: a thread there runs the jump, which is fine.</param>
/// <param name="End">The end of the displaced instructions.</param>
/// <param name="Name">The spec, for messages.</param>
internal readonly record struct PatchWindow(ulong Start, ulong End, string Name)
{
    /// <summary>Whether <paramref name="address"/> is strictly inside: a thread would resume in the middle of the jump.</summary>
    public bool Contains(ulong address) => address > Start && address < End;
}

/// <summary>
/// The checks on the target's threads before any jump is written, with every thread stopped: no
/// thread may resume inside the bytes a jump replaces, and no return address may point inside them.
/// A thread found inside is single-stepped out; anything that cannot be made safe is refused with
/// one line that says which thread and why.
/// </summary>
internal static unsafe class PatchWindows
{
    /// <summary>Single steps allowed to take a thread out of a window (a loop whose body is the window leaves it at its branch).</summary>
    private const int MaxSteps = 64;

    /// <summary>How far above rsp a thread's stack is scanned for return addresses.</summary>
    private const ulong StackScanBytes = 256 * 1024;

    /// <summary>How long one single step may take before the thread is taken to be blocked in a system call.</summary>
    private const int StepTimeoutMs = 500;

    /// <summary>
    /// Single-steps every stopped thread that would resume inside a window until it would not.
    /// A thread stopped in a system call resumes at rip, or at rip - 2 if the kernel restarts the
    /// call (it rewinds to the <c>syscall</c> instruction): both count.
    /// </summary>
    /// <returns>How many threads were stepped out.</returns>
    /// <exception cref="UprobeException">A thread is blocked in a system call that would return or restart inside a window, or does not leave it.</exception>
    public static int StepThreadsOut(PtraceTracer tracer, IReadOnlyList<PatchWindow> windows)
    {
        int stepped = 0;
        foreach (TracedThread thread in tracer.Threads.Where(t => t.Stopped).ToArray())
        {
            int tid = thread.Tid;
            for (int step = 0; ; step++)
            {
                if (!TryGetRegisters(tid, out Regs regs))
                    break;
                bool restarts = RestartsSyscall(regs);
                PatchWindow? inside = Find(windows, regs.Rip) ?? (restarts ? Find(windows, regs.Rip - 2) : null);
                if (inside is not { } window)
                {
                    stepped += step > 0 ? 1 : 0;
                    break;
                }
                // Stepping it would restart the call, which may block for as long as it likes.
                if (restarts)
                    throw new UprobeException($"{window.Name}: thread {tid} is in a system call that returns inside the bytes the jump would replace (rip 0x{regs.Rip:x}); the jump was not written; try again once it has returned");
                if (step == MaxSteps)
                    throw new UprobeException($"{window.Name}: thread {tid} is still inside the bytes the jump would replace after {MaxSteps} single steps (rip 0x{regs.Rip:x}); the jump was not written; try again");
                if (!StepOnce(tracer, tid))
                    throw new UprobeException($"{window.Name}: thread {tid} blocked in a system call inside the bytes the jump would replace (rip 0x{regs.Rip:x}); the jump was not written; try again once it has returned");
            }
        }
        return stepped;
    }

    /// <summary>
    /// Scans each stopped thread's stack, from rsp to the end of its mapping (at most
    /// <see cref="StackScanBytes"/>), for a word that points strictly inside a window: a return
    /// address, or the saved rip of a signal frame, that would resume in the middle of the jump. Any
    /// such word refuses, even one that is only data: the scan cannot tell them apart.
    /// </summary>
    /// <exception cref="UprobeException">Such a word was found; the message names the thread, the value and where it is.</exception>
    public static void CheckStacks(PtraceTracer tracer, IReadOnlyList<PatchWindow> windows)
    {
        if (FindOnStacks(tracer, value => Find(windows, value) is not null) is { } found)
        {
            PatchWindow window = Find(windows, found.Value)!.Value;
            throw new UprobeException($"{window.Name}: thread {found.Tid} has 0x{found.Value:x}, inside the bytes the jump would replace, on its stack at 0x{found.At:x} (a return address, or the saved rip of a signal handler's frame); the jump was not written; try again once it has returned");
        }
    }

    /// <summary>
    /// The first word on a stopped thread's stack (from rsp to the end of its mapping, at most
    /// <see cref="StackScanBytes"/>) for which <paramref name="points"/> holds: the thread, the
    /// word and its address; null when there is none.
    /// </summary>
    public static (int Tid, ulong Value, ulong At)? FindOnStacks(PtraceTracer tracer, Func<ulong, bool> points)
    {
        int pid = tracer.Pid;
        var mappings = AllMappings(pid);
        byte[] buffer = new byte[StackScanBytes];
        foreach (TracedThread thread in tracer.Threads.Where(t => t.Stopped))
        {
            if (!TryGetRegisters(thread.Tid, out Regs regs))
                continue;
            ulong from = regs.Rsp & ~7UL;
            var stack = mappings.FirstOrDefault(m => from >= m.Start && from < m.End);
            if (stack.End == 0)
                continue;  // rsp in no mapping: the thread uses no stack we could scan (it would fault at its next push)
            int length = (int)Math.Min(stack.End - from, StackScanBytes);
            fixed (byte* words = buffer)
            {
                var local = new Native.IoVec { Base = words, Length = (nuint)length };
                var remote = new Native.IoVec { Base = (void*)from, Length = (nuint)length };
                long read = Native.process_vm_readv(pid, &local, 1, &remote, 1, 0);
                for (long offset = 0; offset + 8 <= read; offset += 8)
                {
                    ulong value = *(ulong*)(words + offset);
                    if (points(value))
                        return (thread.Tid, value, from + (ulong)offset);
                }
            }
        }
        return null;
    }

    private static PatchWindow? Find(IReadOnlyList<PatchWindow> windows, ulong address)
    {
        foreach (PatchWindow window in windows)
            if (window.Contains(address))
                return window;
        return null;
    }

    /// <summary>
    /// Whether the thread stopped in a system call the kernel will restart when it resumes
    /// (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK): it then rewinds rip to
    /// the two-byte <c>syscall</c> instruction.
    /// </summary>
    private static bool RestartsSyscall(Regs regs) =>
        (long)regs.OrigRax >= 0 && (long)regs.Rax is -512 or -513 or -514 or -516;

    /// <summary>One single step, waiting at most <see cref="StepTimeoutMs"/>; false if the thread blocked (it is interrupted and stopped again).</summary>
    private static bool StepOnce(PtraceTracer tracer, int tid)
    {
        Call(SingleStep, tid, 0, 0);
        long deadline = Environment.TickCount64 + StepTimeoutMs;
        bool interrupted = false;
        while (true)
        {
            int raw;
            int got = WaitPid(tid, &raw, Wall | WNoHang);
            if (got == tid)
            {
                if (!Stopped(raw))
                    throw new UprobeException($"thread {tid} exited while it was stepped out of the bytes a jump would replace; try again");
                var status = new WaitStatus(raw);
                // A signal of the program's arrived instead of the step: keep it for when the thread resumes.
                if (status.Event == 0 && status.Signal != SigTrap)
                    tracer.Hold(tid, status.Signal);
                return !interrupted;
            }
            if (got < 0)
                throw new UprobeException($"thread {tid} could not be stepped out of the bytes a jump would replace; try again");
            if (!interrupted && Environment.TickCount64 > deadline)
            {
                Call(Interrupt, tid, 0, 0);
                interrupted = true;
            }
            System.Threading.Thread.Sleep(interrupted ? 1 : 0);
        }
    }

    /// <summary>Every mapping of the process, anonymous ones included (stacks of threads other than the first are anonymous).</summary>
    private static List<(ulong Start, ulong End)> AllMappings(int pid)
    {
        var mappings = new List<(ulong, ulong)>();
        foreach (string line in File.ReadLines($"/proc/{pid}/maps"))
        {
            int dash = line.IndexOf('-'), space = line.IndexOf(' ');
            if (dash < 0 || space < dash)
                continue;
            mappings.Add((ulong.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                ulong.Parse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture)));
        }
        return mappings;
    }
}
