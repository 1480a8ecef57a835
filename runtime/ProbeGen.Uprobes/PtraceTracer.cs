using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using static ProbeGen.Uprobes.Ptrace;

namespace ProbeGen.Uprobes;

/// <summary>What a tracer traces: a running process, or a program it launches.</summary>
/// <param name="Pid">The process to attach to (ignored when <paramref name="Command"/> is given).</param>
/// <param name="Command">The program to launch and its arguments, the program's path resolved; null to attach.</param>
/// <param name="StandardOutput">A file descriptor of this process to become the program's standard output; -1 shares ours.</param>
/// <param name="OnStarted">Called with the pid at the program's exec, before it (or its dynamic loader) runs anything.</param>
/// <param name="OnThreadExit">Called on the tracer thread as each thread of the program exits, while its memory still exists.</param>
internal sealed record TracerOptions(int Pid, IReadOnlyList<string>? Command, int StandardOutput = -1, Action<int>? OnStarted = null, Action<int>? OnThreadExit = null);

/// <summary>
/// What a backend does at the moments the tracer hands over. Every call is on the tracer thread,
/// with the threads named stopped.
/// </summary>
internal interface ITracerClient
{
    /// <summary>Attached to every thread (or the launched program reached its exec), all stopped, before any is continued.</summary>
    void OnAttached(int tid);

    /// <summary>A thread stopped with SIGTRAP; false when the trap is not the backend's (the program then gets it).</summary>
    bool OnTrap(int tid);

    /// <summary>Whether a thread stopped by SIGTRAP stopped at one of the backend's int3s.</summary>
    bool OwnsTrap(int tid);

    /// <summary>The process replaced its image; <paramref name="tid"/> is its only thread now.</summary>
    void OnExec(int tid);

    /// <summary>A forked child, stopped, about to be let go: undo in its copy of memory what the backend wrote.</summary>
    void OnForkedChild(int parentTid, int child);

    /// <summary>Detaching, with every thread that could be stopped stopped, before any is let go.</summary>
    void PrepareDetach();

    /// <summary>Detaching <paramref name="tid"/>, next; <paramref name="trapped"/>: it stopped at one of the backend's int3s and was not handled.</summary>
    void PrepareThreadDetach(int tid, bool trapped);

    /// <summary>Every stopped thread has been detached.</summary>
    void FinishDetach();
}

/// <summary>
/// The ptrace tracer loop, shared by every backend that traces: one dedicated thread (ptrace
/// requests are only valid from the thread that attached) attaches to a process or launches a
/// program, waits for its threads' state changes, dispatches each one once, and detaches.
/// The backend's part is an <see cref="ITracerClient"/>; without one, the tracer only follows the
/// program (the perf backend's launcher).
/// </summary>
/// <remarks>
/// <para>Starting sets SA_NOCLDSTOP on this process's SIGCHLD handler, keeping the handler:
/// otherwise every trap, a ptrace-stop, would also signal the process. Exits are still signalled.</para>
/// <para>Forked children are not traced: the client undoes its writes in their memory and they are
/// let go. A vfork child shares the tracee's memory, so it is traced like one of its threads until it execs.</para>
/// </remarks>
internal sealed unsafe class PtraceTracer
{
    private readonly TracerOptions _options;
    private readonly ITracerClient? _client;
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _ready = new();

    /// <summary>The traced threads, by tid. Owned by the tracer thread.</summary>
    private readonly Dictionary<int, TracedThread> _threads = [];
    private bool _running;
    private int _pid;
    private Exception? _startError;
    private volatile bool _stopping;
    private int? _exitCode;

    /// <summary>A tracer, not started yet: a client that keeps it can use it from its first callback.</summary>
    public PtraceTracer(TracerOptions options, ITracerClient? client)
    {
        _options = options;
        _client = client;
        _pid = options.Command is null ? options.Pid : 0;
        _thread = new Thread(Run) { IsBackground = true, Name = "ptrace tracer" };
    }

    /// <summary>Attaches or launches, and returns once the tracee runs.</summary>
    /// <exception cref="UprobeException">The process cannot be traced, the program cannot be started, or the client failed at the start.</exception>
    public PtraceTracer Start()
    {
        QuietChildStops();
        _thread.Start();
        _ready.Wait();
        if (_startError is { } error)
        {
            _thread.Join();
            throw error is UprobeException ? error : new UprobeException(error.Message);
        }
        return this;
    }

    /// <summary>The traced process (0 until a launched one exists).</summary>
    public int Pid => Volatile.Read(ref _pid);

    /// <summary>A launched process's exit status once it has exited (128 + the signal if a signal killed it); otherwise null.</summary>
    public int? ExitCode => _exitCode;

    /// <summary>What ended the trace early, if anything did.</summary>
    public Exception? Failure { get; private set; }

    /// <summary>Whether this tracer started the program (and so kills it if it outlives the trace).</summary>
    public bool Launched => _options.Command is not null;

    /// <summary>Completes when the traced process has exited or the tracer was disposed.</summary>
    public bool WaitForEnd(TimeSpan timeout) => _thread.Join(timeout);

    /// <summary>The traced thread <paramref name="tid"/>, if it is one.</summary>
    public TracedThread? Find(int tid) => _threads.GetValueOrDefault(tid);

    /// <summary>Every traced thread.</summary>
    public IEnumerable<TracedThread> Threads => _threads.Values;

    /// <summary>A stopped thread to read and write memory through: ptrace reaches memory only through a tracee in a ptrace-stop.</summary>
    public int AnyStopped => _threads.TryGetValue(_pid, out TracedThread? leader) && leader.Stopped ? _pid : _threads.Values.First(t => t.Stopped).Tid;

    /// <summary>Whether any thread is stopped.</summary>
    public bool AnyThreadStopped => _threads.Values.Any(t => t.Stopped);

    /// <summary>Detaches from every thread (the client restores what it wrote first); a launched process that is still running is killed.</summary>
    public void Dispose()
    {
        _stopping = true;
        if (_thread.Join(0))
            return;
        // The tracer blocks in waitid(P_ALL). Rather than signal the tracee (a program may block
        // every signal but SIGKILL and SIGSTOP), wake it with a state change of its own: a child
        // that exits at once. Reaped here, once the tracer has seen it.
        var wakers = new List<int>();
        do
        {
            int waker = SpawnWaker();
            if (waker > 0)
                wakers.Add(waker);
        }
        while (!_thread.Join(wakers.Count > 0 ? 1000 : 100));
        foreach (int waker in wakers)
        {
            int status;
            WaitPid(waker, &status, 0);
        }
    }

    private void Run()
    {
        try
        {
            if (_options.Command is { } command)
            {
                long options = OptionTraceClone | OptionTraceFork | OptionTraceVfork | OptionTraceExec | OptionExitKill | (_options.OnThreadExit is null ? 0 : OptionTraceExit);
                int pid = ProgramLauncher.SpawnToExec(command, _options.StandardOutput, options,
                    started => Volatile.Write(ref _pid, started), out _exitCode);
                Track(pid).Stopped = true;
                _options.OnStarted?.Invoke(pid);
                _client?.OnAttached(pid);
            }
            else
            {
                AttachRunning();
                _client?.OnAttached(AnyStopped);
            }
            foreach (int tid in _threads.Keys.ToArray())
                Continue(tid, 0);
            _running = true;
        }
        catch (Exception ex)
        {
            _startError = ex;
            Finish();
            _ready.Set();
            return;
        }
        _ready.Set();
        try
        {
            Loop();
        }
        catch (Exception ex)
        {
            // Never let the tracer thread take the process down: detach and end the trace.
            Failure = ex;
        }
        finally
        {
            Finish();
        }
    }

    private TracedThread Track(int tid)
    {
        if (!_threads.TryGetValue(tid, out TracedThread? thread))
            _threads[tid] = thread = new TracedThread(tid);
        return thread;
    }

    /// <summary>
    /// Continues a stopped thread with <paramref name="signal"/>, or, when that is 0, with a signal
    /// of the program's the engine held for it (another held one is queued to it again).
    /// </summary>
    public void Continue(int tid, int signal)
    {
        if (_threads.TryGetValue(tid, out TracedThread? thread))
        {
            thread.Stopped = false;
            thread.TrapStop = false;
            int held = thread.HeldSignal;
            thread.HeldSignal = 0;
            if (held != 0)
            {
                if (signal == 0)
                    signal = held;
                else if (held != signal)
                    ProcStatus.ThreadKill(tid, held);
            }
        }
        Call(Cont, tid, 0, signal);
    }

    /// <summary>
    /// Keeps a signal of the program's that arrived while the engine held the thread, to deliver
    /// when it resumes. One is kept per thread; another is queued to the thread again, and reported again later.
    /// </summary>
    public void Hold(int tid, int signal)
    {
        if (!_threads.TryGetValue(tid, out TracedThread? thread))
            return;
        if (thread.HeldSignal == 0)
            thread.HeldSignal = signal;
        else if (thread.HeldSignal != signal)
            ProcStatus.ThreadKill(tid, signal);
    }

    private void Finish()
    {
        try
        {
            DetachAll();
        }
        catch (Exception ex)
        {
            Failure ??= ex;
        }
        if (Launched && _pid > 0 && _exitCode is null)
        {
            // Launched and still alive: it was started for the trace and ends with it. It is our
            // child, and no one else will reap it.
            SendSignal(_pid, SigKill);
            int status;
            if (WaitPid(_pid, &status, 0) == _pid)
                _exitCode = Ptrace.ExitCode(status);
        }
    }

    private void AttachRunning()
    {
        if (!Directory.Exists($"/proc/{_pid}"))
            throw new UprobeException($"no such process: {_pid}");
        // A thread not yet seized can start another meanwhile: list again until nothing is new.
        // (Seized ones report their clones as events.)
        bool found = true;
        while (found)
        {
            found = false;
            foreach (string task in Directory.GetDirectories($"/proc/{_pid}/task"))
            {
                int tid = int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture);
                if (_threads.ContainsKey(tid) || ProcStatus.IsZombie(tid))
                    continue;
                if (Call(Seize, tid, 0, (nint)(OptionTraceClone | OptionTraceFork | OptionTraceVfork | OptionTraceExec | (_options.OnThreadExit is null ? 0 : OptionTraceExit))) != 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == 3 /* ESRCH: the thread exited meanwhile */)
                        continue;
                    int tracer = errno == 1 ? ProcStatus.TracerOf(tid) : 0;
                    if (tracer != 0 && (tracer == Environment.ProcessId || tracer == ProcStatus.CurrentThreadId()))
                    {
                        // Started by a thread seized a moment ago: already ours, its first stop is on the way.
                        Track(tid);
                        found = true;
                        continue;
                    }
                    if (tracer != 0 && Directory.Exists($"/proc/self/task/{tracer}") && ProcStatus.WaitForRelease(tid))
                    {
                        // An earlier session of this process was still letting go of the thread: seize it again.
                        found = true;
                        continue;
                    }
                    throw new UprobeException($"cannot ptrace process {_pid} ({Marshal.GetPInvokeErrorMessage(errno)}): {ProcStatus.PermissionHint()}", environment: true);
                }
                Track(tid);
                found = true;
            }
        }
        StopAll();
        if (!AnyThreadStopped)
            throw new UprobeException($"process {_pid} has no thread that could be stopped");
    }

    /// <summary>
    /// Interrupts every thread and collects a stop from each, handling what is reported instead
    /// of the interrupt on the way: new threads and children, exits, and signals of the program's
    /// own (kept, to be delivered when the thread resumes). A thread that does not stop within two
    /// seconds (a vfork parent waiting for its child, a zombie) is left out.
    /// </summary>
    private void StopAll()
    {
        var waiting = new HashSet<int>(_threads.Values.Where(t => !t.Stopped).Select(t => t.Tid));
        foreach (int tid in waiting)
            Call(Interrupt, tid, 0, 0);
        // Continued event stops report the interrupt next; bounded, for a vfork parent that waits on.
        long deadline = Environment.TickCount64 + 2000;
        while (waiting.Count > 0 && Environment.TickCount64 < deadline)
        {
            bool progressed = false;
            foreach (int tid in waiting.ToArray())
            {
                int raw;
                int got = WaitPid(tid, &raw, Wall | WNoHang);
                if (got == 0)
                    continue;
                progressed = true;
                waiting.Remove(tid);
                var status = new WaitStatus(raw);
                if (got < 0 || !status.Stopped)
                {
                    Gone(tid, got == tid ? raw : null);
                    continue;
                }
                switch (status.Event)
                {
                    case EventStop:
                        TracedThread stopped = Track(tid);
                        if (stopped.IsVforkChild && !stopped.Stopped)
                        {
                            // A vfork child: its parent cannot stop until it execs or exits. Let it go on.
                            Call(Cont, tid, 0, 0);
                            waiting.Add(tid);
                            continue;
                        }
                        stopped.Stopped = true;  // the interrupt, a group-stop, or a new thread's first stop
                        continue;
                    case 0:
                        Track(tid).Stopped = true;
                        if (status.Signal == SigTrap && _client?.OwnsTrap(tid) == true)
                            Track(tid).TrapStop = true;
                        else
                            Hold(tid, status.Signal);  // a signal-delivery-stop: the program's signal
                        continue;
                    case EventClone:
                        int thread = (int)EventMessage(tid);
                        if (!_threads.ContainsKey(thread))
                        {
                            Track(thread);
                            waiting.Add(thread);  // its first stop comes by itself
                        }
                        break;
                    case EventFork:
                        LetForkedChildGo(tid, (int)EventMessage(tid));
                        break;
                    case EventVfork:
                        int child = (int)EventMessage(tid);
                        Track(child).IsVforkChild = true;
                        waiting.Add(child);
                        break;
                    case EventExec:
                        if (Find(tid) is { IsVforkChild: true } vforked)
                        {
                            Forget(vforked);
                            Call(Detach, tid, 0, 0);
                            continue;
                        }
                        OnExec(tid);
                        break;
                }
                // An event stop is inside a system call, no place to run code in: continue it to
                // the interrupt, which stops it on its way back to user space.
                Call(Cont, tid, 0, 0);
                waiting.Add(tid);
            }
            if (!progressed)
                Thread.Sleep(1);
        }
    }

    /// <summary>Stops tracking a thread that is no longer ours; its hijacked returns will never be taken.</summary>
    private void Forget(TracedThread thread)
    {
        _threads.Remove(thread.Tid);
        thread.Returns.Abandon();
    }

    /// <summary>A tracee that exited or was killed.</summary>
    private void Gone(int tid, int? status)
    {
        if (Find(tid) is { } thread)
            Forget(thread);
        if (tid == _pid && status is { } s)
            _exitCode = Ptrace.ExitCode(s);
    }

    /// <summary>
    /// The traced process ran execve (from any thread: the kernel gives the leader's id to the
    /// thread that ran it, and every other thread is gone).
    /// </summary>
    private void OnExec(int tid)
    {
        int former = (int)EventMessage(tid);
        foreach (TracedThread gone in _threads.Values.Where(t => t.Tid != tid && !t.IsVforkChild).ToArray())
            Gone(gone.Tid, null);
        if (former != tid)
            Gone(former, null);
        Track(tid);
        _client?.OnExec(tid);
    }

    /// <summary>
    /// A forked child starts traced, with a private copy of our tracee's memory: the client's
    /// writes included. The client puts the copy back as it was, and the child goes.
    /// </summary>
    private void LetForkedChildGo(int parentTid, int child)
    {
        int status;
        WaitPid(child, &status, Wall);  // its first stop under SEIZE
        _client?.OnForkedChild(parentTid, child);
        Call(Detach, child, 0, 0);
    }

    private void Loop()
    {
        while (_threads.Count > 0 && !_stopping)
        {
            int tid = WaitAnyNoReap();
            if (tid < 0)
                return;  // ECHILD: nothing is left
            if (!_threads.ContainsKey(tid))
            {
                // A child of this process that is not ours (a Process object's, say) has exited:
                // its owner reaps it soon. Until then waitid keeps reporting it, so look at ours directly.
                if (!PollOwn())
                    Thread.Sleep(1);
                continue;
            }
            int status;
            if (WaitPid(tid, &status, Wall | WNoHang) == tid)
                Dispatch(tid, new WaitStatus(status));
        }
    }

    /// <summary>Consumes one pending state change of one of our tracees, if there is one.</summary>
    private bool PollOwn()
    {
        foreach (int tid in _threads.Keys)
        {
            int status;
            if (WaitPid(tid, &status, Wall | WNoHang) == tid)
            {
                Dispatch(tid, new WaitStatus(status));
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Handles one reported state change: the only place the loop decodes a wait status. Until the
    /// thread is continued it counts as stopped, so a detach after an error still finds it.
    /// </summary>
    private void Dispatch(int tid, WaitStatus status)
    {
        if (!status.Stopped)
        {
            Gone(tid, status.Raw);  // exited or killed
            return;
        }
        if (Find(tid) is { } stopped)
        {
            stopped.Stopped = true;
            stopped.TrapStop |= status.IsTrap;
        }
        switch (status.Event)
        {
            case EventClone:
                Track((int)EventMessage(tid));
                Continue(tid, 0);
                return;
            case EventFork:
                LetForkedChildGo(tid, (int)EventMessage(tid));
                Continue(tid, 0);
                return;
            case EventVfork:
                // Shares our tracee's memory, breakpoints and all, until it execs: trace it like a thread.
                Track((int)EventMessage(tid)).IsVforkChild = true;
                Continue(tid, 0);
                return;
            case EventExec:
                if (Find(tid) is { IsVforkChild: true } vforked)
                {
                    // A fresh image with nothing of ours in it.
                    Forget(vforked);
                    Call(Detach, tid, 0, 0);
                    return;
                }
                // The traced process replaced its image: keep following it.
                OnExec(tid);
                Continue(tid, 0);
                return;
            case EventExit:
                _options.OnThreadExit?.Invoke(tid);
                Continue(tid, 0);
                return;
            case EventStop:
                // A group-stop, or a new thread's first stop under SEIZE.
                Track(tid);
                Continue(tid, 0);
                return;
        }
        if (status.Signal == SigTrap && _client?.OnTrap(tid) == true)
            return;
        // Any other signal belongs to the tracee: deliver it.
        Continue(tid, status.Signal == SigStop ? 0 : status.Signal);
    }

    /// <summary>
    /// Stops every thread, lets the client put back what it wrote, and detaches. A thread that
    /// executed one of the client's int3s, but whose SIGTRAP is still queued, takes it first:
    /// detached, it would be killed by it.
    /// </summary>
    private void DetachAll()
    {
        var trapped = new HashSet<int>();
        if (_running)
        {
            StopAll();
            foreach (TracedThread thread in _threads.Values.Where(t => t.Stopped).ToArray())
            {
                int tid = thread.Tid;
                if (!thread.TrapStop && thread.HeldSignal != SigTrap && ProcStatus.SigTrapPending(tid))
                {
                    // It executed an int3, but the interrupt was reported first and the SIGTRAP is
                    // still queued: detached, it would kill the thread. Let the thread take it now
                    // (synchronous signals are dequeued first, so this stop is the SIGTRAP).
                    int held = thread.HeldSignal;
                    thread.HeldSignal = 0;
                    bool alive = true, trap = false;
                    for (int step = 0; step < 8 && alive && !trap; step++)
                    {
                        Call(Cont, tid, 0, 0);
                        int raw;
                        if (WaitPid(tid, &raw, Wall) != tid || !Stopped(raw))
                        {
                            Gone(tid, raw);
                            alive = false;
                            break;
                        }
                        var status = new WaitStatus(raw);
                        trap = status.IsTrap;
                        if (status.Event == 0 && !trap)
                        {
                            // Another of the program's signals came first: keep it, and go on to the trap.
                            if (held == 0)
                                held = status.Signal;
                            else
                                ProcStatus.ThreadKill(tid, status.Signal);
                        }
                    }
                    if (!alive)
                        continue;
                    if (held != 0)
                        thread.HeldSignal = held;  // the program's signal, still delivered on detach
                    if (trap)
                        thread.TrapStop = true;
                }
                if (thread.TrapStop)
                {
                    if (_client?.OwnsTrap(tid) == true)
                        trapped.Add(tid);
                    else
                        Hold(tid, SigTrap);  // the program's own int3: it gets its SIGTRAP
                }
            }
        }
        _client?.PrepareDetach();
        foreach (TracedThread thread in _threads.Values.Where(t => t.Stopped))
        {
            _client?.PrepareThreadDetach(thread.Tid, trapped.Contains(thread.Tid));
            Call(Detach, thread.Tid, 0, thread.HeldSignal);
        }
        _client?.FinishDetach();
        foreach (TracedThread thread in _threads.Values)
            thread.Returns.Abandon();
        _threads.Clear();
    }

    private static ulong EventMessage(int tid)
    {
        ulong message;
        Call(GetEventMsg, tid, 0, (nint)(&message));
        return message;
    }
}
