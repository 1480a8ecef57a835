using System;
using System.Runtime.InteropServices;

namespace ProbeGen.Cli;

/// <summary>
/// Tunes glibc's allocator for the CLI's own process. TraceEvent keeps each block of a stream in
/// native buffers; above glibc's default threshold each one is a fresh mmap whose pages fault in on
/// first touch and go back on free, which on a busy stream took a quarter of the CLI's time.
/// Keeping such buffers on the heap, and not trimming it, lets them be reused.
/// </summary>
internal static partial class NativeAllocator
{
    private const int MmapThreshold = -3, TrimThreshold = -1;

    /// <summary>Raises the mmap and trim thresholds; does nothing where glibc's mallopt is absent (musl, other systems).</summary>
    public static void Tune()
    {
        if (!OperatingSystem.IsLinux())
            return;
        try
        {
            // 32 MB is the largest mmap threshold glibc accepts on 64-bit systems.
            _ = mallopt(MmapThreshold, 32 << 20);
            _ = mallopt(TrimThreshold, 128 << 20);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int mallopt(int param, int value);
}
