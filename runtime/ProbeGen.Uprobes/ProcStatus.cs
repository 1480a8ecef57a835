using System;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;

namespace ProbeGen.Uprobes;

/// <summary>What <c>/proc</c> says about a thread that ptrace does not: its tracer, its thread group, its pending signals, its state.</summary>
internal static class ProcStatus
{
    /// <summary>A field of /proc/TID/status ("TracerPid:", "Tgid:", "SigPnd:"), or null if it cannot be read.</summary>
    public static string? Field(int tid, string field)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{tid}/status"))
                if (line.StartsWith(field, StringComparison.Ordinal))
                    return line[field.Length..].Trim();
        }
        catch (IOException)
        {
        }
        return null;
    }

    private static int Number(int tid, string field) =>
        int.TryParse(Field(tid, field), NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) ? value : -1;

    /// <summary>The thread's tracer (0: none, -1: unknown).</summary>
    public static int TracerOf(int tid) => Number(tid, "TracerPid:");

    /// <summary>Waits up to two seconds for another tracer thread of this process to detach from <paramref name="tid"/>.</summary>
    public static bool WaitForRelease(int tid)
    {
        for (int i = 0; i < 400; i++)
        {
            int tracer = TracerOf(tid);
            if (tracer <= 0)
                return true;
            Thread.Sleep(5);
        }
        return false;
    }

    /// <summary>Queues a signal to one thread again (tgkill).</summary>
    public static void ThreadKill(int tid, int signal) => Ptrace.ThreadKill(Number(tid, "Tgid:"), tid, signal);

    /// <summary>Whether a SIGTRAP is queued for the thread (its SigPnd mask).</summary>
    public static bool SigTrapPending(int tid) =>
        ulong.TryParse(Field(tid, "SigPnd:"), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong pending)
        && (pending & (1UL << (Ptrace.SigTrap - 1))) != 0;

    /// <summary>Whether the thread is a zombie or dead (or cannot be read at all).</summary>
    public static bool IsZombie(int tid)
    {
        try
        {
            // "pid (comm) S ...": the state follows the last ')'.
            string stat = File.ReadAllText($"/proc/{tid}/stat");
            char state = stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault();
            return state is 'Z' or 'X';
        }
        catch (IOException)
        {
            return true;
        }
    }

    /// <summary>What the user can do when ptrace is refused.</summary>
    public static string PermissionHint()
    {
        string scope;
        try
        {
            scope = File.ReadAllText("/proc/sys/kernel/yama/ptrace_scope").Trim();
        }
        catch (IOException)
        {
            scope = "absent";
        }
        return $"run as root or with CAP_SYS_PTRACE, or trace a process of your own user with /proc/sys/kernel/yama/ptrace_scope at 0 or 1 (now {scope})";
    }

    [DllImport("libc", SetLastError = false)]
    private static extern int gettid();

    /// <summary>The calling thread's kernel id.</summary>
    public static int CurrentThreadId() => gettid();
}
