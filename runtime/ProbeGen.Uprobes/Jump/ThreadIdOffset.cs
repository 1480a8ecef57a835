using System;

namespace ProbeGen.Uprobes.Jump;

/// <summary>
/// Where the C library keeps each thread's id in its thread control block (the block the fs
/// register points at on x86-64), so a trampoline can read it with one load instead of a gettid
/// system call. The offset depends on the C library's build, so it is found, not assumed.
/// </summary>
internal static class ThreadIdOffset
{
    /// <summary>How far into the control block to look.</summary>
    private const int SearchBytes = 0x1000;

    /// <summary>
    /// The offset in this process, found from this thread and a second one that is kept running
    /// meanwhile (a thread that has exited has its id cleared). A target that uses the same C
    /// library has the same layout; the caller checks the offset against the target's own threads.
    /// </summary>
    public static unsafe int FindInThisProcess()
    {
        static (int, Func<int, int?>) Here()
        {
            nint block = Native.pthread_self();
            return (Native.gettid(), offset => *(int*)(block + offset));
        }
        (int, Func<int, int?>) other = default;
        using var ready = new System.Threading.ManualResetEventSlim();
        using var done = new System.Threading.ManualResetEventSlim();
        var thread = new System.Threading.Thread(() =>
        {
            other = Here();
            ready.Set();
            done.Wait();
        }) { IsBackground = true };
        thread.Start();
        ready.Wait();
        int found = Find([Here(), other]);
        done.Set();
        thread.Join();
        return found;
    }

    /// <summary>
    /// The offset at which every given thread's control block holds its id, or -1 if there is no
    /// single such offset (a trampoline then asks the kernel).
    /// </summary>
    /// <param name="threads">Each thread's id and a reader of its control block's 32-bit words by offset (null when unreadable).</param>
    public static int Find(ReadOnlySpan<(int Tid, Func<int, int?> ReadWord)> threads)
    {
        if (threads.IsEmpty)
            return -1;
        for (int offset = 0; offset < SearchBytes; offset += 4)
        {
            bool all = true;
            foreach (var (tid, read) in threads)
            {
                if (read(offset) != tid)
                {
                    all = false;
                    break;
                }
            }
            if (all)
                return offset;
        }
        return -1;
    }
}
