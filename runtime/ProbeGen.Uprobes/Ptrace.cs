using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;

namespace ProbeGen.Uprobes;

/// <summary>ptrace, wait and spawn, straight from libc, for <see cref="PtraceTracer"/> and the parts of the engine it serves.</summary>
internal static unsafe partial class Ptrace
{
    public const int PeekData = 2, PokeData = 5, Cont = 7, Kill = 8, SingleStep = 9, GetRegs = 12, SetRegs = 13, Detach = 17;
    public const int SetOptions = 0x4200, GetEventMsg = 0x4201, Seize = 0x4206, Interrupt = 0x4207;
    public const long OptionTraceFork = 1 << 1, OptionTraceVfork = 1 << 2, OptionTraceClone = 1 << 3, OptionTraceExec = 1 << 4, OptionTraceExit = 1 << 6, OptionExitKill = 1 << 20;
    public const int EventFork = 1, EventVfork = 2, EventClone = 3, EventExec = 4, EventExit = 6, EventStop = 128;
    public const int Wall = 0x40000000, WNoHang = 1, WUntraced = 2, WStopped = 2, WExited = 4, WNoWait = 0x01000000;
    public const int SigKill = 9, SigTrap = 5, SigChld = 17, SigCont = 18, SigStop = 19;
    public const int ECHILD = 10;

    /// <summary>user_regs_struct on x86-64.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Regs
    {
        public ulong R15, R14, R13, R12, Rbp, Rbx, R11, R10, R9, R8, Rax, Rcx, Rdx, Rsi, Rdi, OrigRax, Rip, Cs, Eflags, Rsp, Ss, FsBase, GsBase, Ds, Es, Fs, Gs;
    }

    [LibraryImport("libc", EntryPoint = "ptrace", SetLastError = true)]
    public static partial long Call(long request, int pid, nint address, nint data);

    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    public static partial int WaitPid(int pid, int* status, int options);

    [LibraryImport("libc", EntryPoint = "waitid", SetLastError = true)]
    private static partial int WaitId(int idType, int id, byte* info, int options);

    [LibraryImport("libc", EntryPoint = "tgkill", SetLastError = true)]
    public static partial int ThreadKill(int tgid, int tid, int signal);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int SendSignal(int pid, int signal);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int posix_spawn(int* pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_init(void* fileActions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_adddup2(void* fileActions, int fd, int newFd);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_destroy(void* fileActions);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_init(void* attributes);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setflags(void* attributes, short flags);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigdefault(void* attributes, void* signals);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigmask(void* attributes, void* signals);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_destroy(void* attributes);

    [LibraryImport("libc")]
    private static partial int sigfillset(void* set);

    [LibraryImport("libc")]
    private static partial int sigemptyset(void* set);

    [LibraryImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    private static partial int SigAction(int signal, byte* action, byte* old);

    /// <summary>
    /// Asks the kernel not to send this process SIGCHLD when a child or tracee merely stops
    /// (SA_NOCLDSTOP), keeping whatever handler is installed. Every ptrace trap is a stop: once the
    /// .NET runtime has a SIGCHLD handler (any Process started), each trap would also wake its
    /// signal-handling thread to look for exited children. Exits are still signalled.
    /// </summary>
    public static void QuietChildStops()
    {
        byte* action = stackalloc byte[256];  // struct sigaction is 152 bytes on x86-64 glibc
        if (SigAction(SigChld, null, action) != 0)
            return;
        int* flags = (int*)(action + 8 + 128);  // after sa_handler and sa_mask
        if ((*flags & 1) != 0)
            return;
        *flags |= 1;  // SA_NOCLDSTOP
        SigAction(SigChld, action, null);
    }

    /// <summary>
    /// How long a tracer polls for the next stop before it blocks. A traced thread that hits probes
    /// in a loop traps again within microseconds; blocking instead lets the tracer's CPU go idle,
    /// and waking an idle CPU (an IPI, and on a VM an exit to the hypervisor) costs more than the
    /// rest of the trap: 57-69 us per hit blocking, 17-18 us polling first, on this 2-vCPU VM.
    /// </summary>
    public const long SpinMicroseconds = 20;

    /// <summary>Like waitpid(pid, status, __WALL), but polls for <see cref="SpinMicroseconds"/> before blocking.</summary>
    public static int WaitPidSpinning(int pid, int* status)
    {
        long until = System.Diagnostics.Stopwatch.GetTimestamp() + SpinMicroseconds * System.Diagnostics.Stopwatch.Frequency / 1_000_000;
        do
        {
            int got = WaitPid(pid, status, Wall | WNoHang);
            if (got != 0)
                return got;
        }
        while (System.Diagnostics.Stopwatch.GetTimestamp() < until);
        return WaitPid(pid, status, Wall);
    }

    public static bool Exited(int status) => (status & 0x7f) == 0;

    public static bool Signaled(int status) => (status & 0x7f) != 0 && (status & 0x7f) != 0x7f;

    public static bool Stopped(int status) => (status & 0xff) == 0x7f;

    /// <summary>An exit status as a shell reports it: the code, or 128 + the signal that killed it.</summary>
    public static int ExitCode(int status) => Exited(status) ? (status >> 8) & 0xff : 128 + (status & 0x7f);

    /// <summary>
    /// Waits until some child or tracee of this process has a state change, and returns its id
    /// without consuming the change (WNOWAIT), so a child the runtime's Process class owns is
    /// left for it to reap: polls for <see cref="SpinMicroseconds"/>, then blocks. Returns -1 when
    /// there is nothing left to wait for.
    /// </summary>
    public static int WaitAnyNoReap()
    {
        byte* info = stackalloc byte[128];
        {
            long until = System.Diagnostics.Stopwatch.GetTimestamp() + SpinMicroseconds * System.Diagnostics.Stopwatch.Frequency / 1_000_000;
            do
            {
                *(int*)(info + 16) = 0;
                if (WaitId(0, 0, info, WExited | WStopped | WNoWait | Wall | WNoHang) == 0 && *(int*)(info + 16) != 0)
                    return *(int*)(info + 16);
            }
            while (System.Diagnostics.Stopwatch.GetTimestamp() < until);
        }
        while (true)
        {
            new Span<byte>(info, 128).Clear();
            if (WaitId(0 /* P_ALL */, 0, info, WExited | WStopped | WNoWait | Wall) == 0)
                return *(int*)(info + 16);  // si_pid
            if (Marshal.GetLastPInvokeError() != 4 /* EINTR */)
                return -1;
        }
    }

    /// <summary>
    /// Starts <paramref name="argv"/> through <c>/bin/sh</c>, which stops itself before it execs the
    /// command, so a tracer can seize it first. Signal dispositions and the mask are reset to the
    /// defaults (the .NET runtime ignores SIGPIPE, and an exec keeps ignored signals ignored).
    /// The child is not known to <see cref="System.Diagnostics.Process"/>, so only its tracer reaps it.
    /// </summary>
    /// <param name="argv">The command and its arguments.</param>
    /// <param name="standardOutput">A descriptor of this process to become the child's standard output, or -1 to share ours.</param>
    public static int SpawnStopped(IReadOnlyList<string> argv, int standardOutput) =>
        Spawn(["sh", "-c", "kill -STOP $$; exec \"$@\"", "probegen", .. argv], standardOutput);

    /// <summary>
    /// Starts a child that exits at once, which only the caller reaps: a state change that wakes a
    /// thread blocked in waitid(P_ALL) without touching any other process.
    /// </summary>
    public static int SpawnWaker()
    {
        try
        {
            return Spawn(["sh", "-c", "exit 0"], -1);
        }
        catch (UprobeException)
        {
            return -1;
        }
    }

    /// <summary>posix_spawn of /bin/sh with <paramref name="arguments"/> (argv, sh first).</summary>
    private static int Spawn(string[] arguments, int standardOutput)
    {
        string[] environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => $"{e.Key}={e.Value}").ToArray();
        var pinned = new List<GCHandle>();
        byte** Strings(string[] values)
        {
            var pointers = new nint[values.Length + 1];
            for (int i = 0; i < values.Length; i++)
            {
                GCHandle handle = GCHandle.Alloc(Encoding.UTF8.GetBytes(values[i] + "\0"), GCHandleType.Pinned);
                pinned.Add(handle);
                pointers[i] = handle.AddrOfPinnedObject();
            }
            GCHandle table = GCHandle.Alloc(pointers, GCHandleType.Pinned);
            pinned.Add(table);
            return (byte**)table.AddrOfPinnedObject();
        }
        byte* actions = stackalloc byte[256];   // posix_spawn_file_actions_t is 80 bytes on glibc
        byte* attributes = stackalloc byte[512]; // posix_spawnattr_t is 336
        byte* all = stackalloc byte[128], none = stackalloc byte[128];
        try
        {
            posix_spawn_file_actions_init(actions);
            if (standardOutput >= 0)
                posix_spawn_file_actions_adddup2(actions, standardOutput, 1);
            posix_spawnattr_init(attributes);
            sigfillset(all);
            sigemptyset(none);
            posix_spawnattr_setsigdefault(attributes, all);
            posix_spawnattr_setsigmask(attributes, none);
            posix_spawnattr_setflags(attributes, 0x04 /* SETSIGDEF */ | 0x08 /* SETSIGMASK */);
            int pid;
            byte[] sh = "/bin/sh\0"u8.ToArray();
            fixed (byte* path = sh)
            {
                int error = posix_spawn(&pid, path, actions, attributes, Strings(arguments), Strings(environment));
                if (error != 0)
                    throw new UprobeException($"cannot start /bin/sh: {Marshal.GetPInvokeErrorMessage(error)}", environment: true);
            }
            return pid;
        }
        finally
        {
            posix_spawn_file_actions_destroy(actions);
            posix_spawnattr_destroy(attributes);
            foreach (GCHandle handle in pinned)
                handle.Free();
        }
    }

    /// <summary>A file mapping of a process.</summary>
    public readonly record struct Mapping(ulong Start, ulong End, ulong FileOffset, ulong Device, ulong Inode, string Path);

    /// <summary>The file mappings of a process, from <c>/proc/PID/maps</c>.</summary>
    public static List<Mapping> ReadMappings(int pid)
    {
        var mappings = new List<Mapping>();
        foreach (string line in File.ReadLines($"/proc/{pid}/maps"))
        {
            // 55d0c7a00000-55d0c7a01000 r-xp 00001000 08:01 1234 /path
            string[] parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 6 || !parts[5].StartsWith('/'))
                continue;
            string[] range = parts[0].Split('-');
            string[] device = parts[3].Split(':');  // major:minor, in hex
            mappings.Add(new Mapping(
                ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                ulong.Parse(parts[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                Native.MakeDevice(
                    ulong.Parse(device[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    ulong.Parse(device[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture)),
                ulong.Parse(parts[4], CultureInfo.InvariantCulture),
                parts[5].Trim()));
        }
        return mappings;
    }

    /// <summary>Where file offset <paramref name="offset"/> of <paramref name="path"/> is mapped; matched by inode, so a symlink or a relative path finds the file.</summary>
    public static ulong RuntimeAddress(List<Mapping> mappings, int pid, string path, ulong offset)
    {
        ulong inode = Native.Inode(path);
        foreach (Mapping m in mappings)
            if (m.Inode == inode && offset >= m.FileOffset && offset < m.FileOffset + (m.End - m.Start))
                return m.Start + (offset - m.FileOffset);
        throw new UprobeException($"{path} is not mapped in process {pid} at file offset 0x{offset:x}");
    }

    /// <summary>Finds <paramref name="command"/> as execvp would: a path as given, else the first executable on PATH.</summary>
    public static string? FindExecutable(string command)
    {
        static bool Executable(string path) =>
            OperatingSystem.IsLinux() && File.Exists(path) && (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
        if (command.Contains('/'))
            return Executable(command) ? Path.GetFullPath(command) : null;
        foreach (string folder in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(folder, command);
            if (Executable(candidate))
                return candidate;
        }
        return null;
    }

    /// <summary>The program's entry point (AT_ENTRY) from <c>/proc/PID/auxv</c>.</summary>
    public static ulong EntryPoint(int pid)
    {
        byte[] auxv = File.ReadAllBytes($"/proc/{pid}/auxv");
        for (int i = 0; i + 16 <= auxv.Length; i += 16)
        {
            ulong type = BitConverter.ToUInt64(auxv, i);
            if (type == 9 /* AT_ENTRY */)
                return BitConverter.ToUInt64(auxv, i + 8);
            if (type == 0)
                break;
        }
        throw new UprobeException($"process {pid} has no AT_ENTRY in its auxiliary vector");
    }
}
