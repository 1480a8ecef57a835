using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.InteropServices;
using static ProbeGen.Uprobes.Ptrace;

namespace ProbeGen.Uprobes;

/// <summary>
/// Starts a program for a trace, for every backend: spawned stopped, seized, and run to its exec,
/// so the backend is in place before any of the program's code runs. A tracer then follows it to
/// its end: the ptrace backend's plants the probes at the program's entry point; for the perf
/// backend, whose probes are the kernel's, it only holds each exiting thread while the rings are drained.
/// </summary>
internal static unsafe class ProgramLauncher
{
    /// <summary>The command with its program looked up on PATH like a shell does.</summary>
    /// <exception cref="ArgumentException">The command is empty.</exception>
    /// <exception cref="UprobeException">No such executable file.</exception>
    public static string[] Resolve(IReadOnlyList<string> command)
    {
        if (command.Count == 0)
            throw new ArgumentException("no command to launch", nameof(command));
        string program = FindExecutable(command[0]) ?? throw new UprobeException($"cannot start '{command[0]}': no such executable file");
        return [program, .. command.Skip(1)];
    }

    /// <summary>
    /// Launches <paramref name="command"/> under a tracer that plants nothing: it passes the
    /// program's signals on, calls <paramref name="onStarted"/> at the exec and
    /// <paramref name="onThreadExit"/> as each thread exits, and kills the program if it is disposed first.
    /// </summary>
    public static PtraceTracer Launch(IReadOnlyList<string> command, int standardOutput, Action<int>? onStarted, Action<int>? onThreadExit) =>
        new PtraceTracer(new TracerOptions(0, Resolve(command), standardOutput, onStarted, onThreadExit), client: null).Start();

    /// <summary>
    /// Spawns <paramref name="argv"/> stopped (see <see cref="SpawnStopped"/>), seizes it, and lets
    /// it run to its exec: the new program is mapped and none of it has run. Returns the pid, stopped
    /// there, in a ptrace-stop of the calling thread, which becomes its tracer.
    /// </summary>
    /// <param name="argv">The program, its path resolved, and its arguments.</param>
    /// <param name="standardOutput">A descriptor of this process to become the program's standard output, or -1 to share ours.</param>
    /// <param name="options">The ptrace options to seize it with; they must trace exec.</param>
    /// <param name="started">Called with the pid as soon as the child exists, so the caller can kill it if this fails.</param>
    /// <param name="exitCode">The exit status, when the child exited before its exec.</param>
    /// <exception cref="UprobeException">It exited before its exec (a command the shell could not run), or it cannot be traced.</exception>
    public static int SpawnToExec(IReadOnlyList<string> argv, int standardOutput, long options, Action<int> started, out int? exitCode)
    {
        exitCode = null;
        int pid = SpawnStopped(argv, standardOutput);
        started(pid);
        int raw;
        if (WaitPid(pid, &raw, WUntraced) != pid || !Stopped(raw))
            return Failed(argv, raw, out exitCode);
        if (Call(Seize, pid, 0, (nint)options) != 0)
        {
            // Left stopped for the caller, which kills and reaps its child.
            throw new UprobeException($"cannot ptrace the launched process ({Marshal.GetLastPInvokeErrorMessage()})", environment: true);
        }
        SendSignal(pid, SigCont);
        while (true)
        {
            if (WaitPid(pid, &raw, Wall) != pid || !Stopped(raw))
                return Failed(argv, raw, out exitCode);
            var status = new WaitStatus(raw);
            if (status.Event == EventExec)
                return pid;
            // Its own group-stop (reported under SEIZE as an event stop), then the SIGCONT: pass signals on.
            Call(Cont, pid, 0, status.Event == 0 && status.Signal != SigStop ? status.Signal : 0);
        }
    }

    private static int Failed(IReadOnlyList<string> argv, int raw, out int? exitCode)
    {
        exitCode = ExitCode(raw);
        throw new UprobeException($"'{argv[0]}' exited with status {exitCode} before it started");
    }
}
