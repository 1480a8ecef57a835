using System;
using System.Threading;

namespace ProbeGen.Control;

/// <summary>
/// Keeps batched hits from dying with the app. The runtime ends every EventPipe session before it
/// runs any managed exit handler, so a hit still in a batch when <c>Main</c> returns would be lost
/// without a trace. After <c>Main</c> returns, though, the runtime waits for every foreground
/// thread, and the main thread already reads as no longer alive: this guard is such a thread. It
/// lives while a trace session may batch, watches the main thread, and when it ends, stops all
/// batching, writes out every batch and leaves, so the exit goes on.
/// </summary>
/// <remarks>
/// A session batches only while the guard can watch: when the main thread is unknown (no probe was
/// registered on it), or under NativeAOT, where the main thread does not read as ended, every hit
/// is written as it happens. <see cref="Environment.Exit(int)"/> does
/// not wait for foreground threads; a process ended that way, or killed, loses what its batches
/// held, at most <see cref="HitLayout.BatchMaxAgeMilliseconds"/> of each busy thread's hits.
/// </remarks>
internal static class ExitGuard
{
    /// <summary>How often the guard looks at the main thread: the most an exit waits for it.</summary>
    private const int PollMilliseconds = 5;

    private static readonly Lock s_lock = new();
    private static Thread? s_main;
    private static Thread? s_guard;
    private static int s_armed;
    private static bool s_exiting;

    /// <summary>
    /// Remembers the calling thread when it is the app's main thread (the first managed thread, id
    /// 1). Called where an app registers its probes: its module initializers, which run on the main
    /// thread before <c>Main</c> for the entry assembly.
    /// </summary>
    public static void NoteThread()
    {
        if (s_main is null && Environment.CurrentManagedThreadId == 1)
            Volatile.Write(ref s_main, Thread.CurrentThread);
    }

    /// <summary>Watches <paramref name="thread"/> instead of the main thread: for a host whose main thread ProbeGen never sees, and for tests.</summary>
    internal static void Watch(Thread thread) => Volatile.Write(ref s_main, thread);

    /// <summary>
    /// Starts guarding for one more session that may batch; false when the exit cannot be watched
    /// (the main thread is unknown or gone), and then the session must not batch. Each true is
    /// paired with one <see cref="Disarm"/>.
    /// </summary>
    public static bool Arm()
    {
        Thread? main = Volatile.Read(ref s_main);
        // Under NativeAOT the main thread still reads as alive after Main returns, so the guard
        // could not tell the exit and would hold it forever: such an app writes every hit at once.
        if (main is null || !main.IsAlive || !System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeSupported)
            return false;
        lock (s_lock)
        {
            if (s_exiting)
                return false;
            s_armed++;
            if (s_guard is null)
            {
                s_guard = new Thread(Run) { IsBackground = false, Name = "ProbeGen exit guard" };
                s_guard.UnsafeStart();
            }
            return true;
        }
    }

    /// <summary>A session that armed the guard has ended.</summary>
    public static void Disarm()
    {
        lock (s_lock)
            s_armed--;
    }

    private static void Run()
    {
        while (true)
        {
            Thread.Sleep(PollMilliseconds);
            Thread? main = Volatile.Read(ref s_main);
            if (main is null || !main.IsAlive)
            {
                lock (s_lock)
                    s_exiting = true;
                ControlPlane.StopBatching();
                lock (s_lock)
                    s_guard = null;
                return;
            }
            lock (s_lock)
            {
                if (s_armed == 0)
                {
                    s_guard = null;
                    return;
                }
            }
        }
    }
}
