using System;
using System.Runtime.InteropServices;

namespace ProbeGen.Uprobes;

/// <summary>The Linux calls the engine needs, straight from libc.</summary>
internal static unsafe partial class Native
{
    public const long SysPerfEventOpen = 298;  // x86-64
    public const ulong PerfEventIocEnable = 0x2400, PerfEventIocDisable = 0x2401;
    public const ulong PerfFlagFdCloexec = 1UL << 3;
    public const int ProtRead = 1, ProtWrite = 2, MapShared = 1, MapPopulate = 0x8000;
    public const int OpenReadWrite = 2, OpenCloexec = 0x80000;
    public const short PollIn = 1;

    /// <summary>perf_event_attr, as far as PERF_ATTR_SIZE_VER5 (112 bytes).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 112)]
    public struct PerfEventAttr
    {
        [FieldOffset(0)] public uint Type;
        [FieldOffset(4)] public uint Size;
        [FieldOffset(8)] public ulong Config;
        [FieldOffset(16)] public ulong SamplePeriod;
        [FieldOffset(24)] public ulong SampleType;
        [FieldOffset(32)] public ulong ReadFormat;
        [FieldOffset(40)] public ulong Flags;
        [FieldOffset(48)] public uint WakeupEvents;
        [FieldOffset(52)] public uint BpType;
        [FieldOffset(56)] public ulong Config1;
        [FieldOffset(64)] public ulong Config2;
        [FieldOffset(72)] public ulong BranchSampleType;
        [FieldOffset(80)] public ulong SampleRegsUser;
        [FieldOffset(88)] public uint SampleStackUser;
        [FieldOffset(92)] public int ClockId;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial long syscall(long number, PerfEventAttr* attr, int pid, int cpu, int groupFd, ulong flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ioctl(int fd, ulong request, ulong argument);

    [LibraryImport("libc", SetLastError = true)]
    public static partial void* mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(void* address, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int mprotect(void* address, nuint length, int protection);

    [LibraryImport("libc")]
    public static partial nint pthread_self();

    [LibraryImport("libc")]
    public static partial int gettid();

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fcntl(int fd, int command, int argument);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint read(int fd, void* buffer, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int poll(PollFd* fds, nuint count, int timeoutMilliseconds);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint process_vm_readv(int pid, IoVec* local, nuint localCount, IoVec* remote, nuint remoteCount, nuint flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint process_vm_writev(int pid, IoVec* local, nuint localCount, IoVec* remote, nuint remoteCount, nuint flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int stat(string path, byte* buffer);

    /// <summary>The inode of a file (st_ino, at offset 8 of struct stat on x86-64).</summary>
    public static ulong Inode(string path) => FileId(path).Inode;

    /// <summary>A file's identity: its device (st_dev, at offset 0 of struct stat on x86-64) and its inode (st_ino, at 8).</summary>
    public static (ulong Device, ulong Inode) FileId(string path)
    {
        byte* buffer = stackalloc byte[256];
        if (stat(path, buffer) != 0)
            throw new UprobeException($"cannot stat {path}: {Marshal.GetLastPInvokeErrorMessage()}");
        return (*(ulong*)buffer, *(ulong*)(buffer + 8));
    }

    /// <summary>
    /// A dev_t from its major and minor numbers, encoded as glibc's makedev does (and so as stat's
    /// st_dev reads): <c>/proc/PID/maps</c> prints the two numbers, stat the encoded value.
    /// </summary>
    public static ulong MakeDevice(ulong major, ulong minor) =>
        ((major & 0xfffff000UL) << 32) | ((major & 0xfffUL) << 8) | ((minor & 0xffffff00UL) << 12) | (minor & 0xffUL);

    /// <summary>Reads a NUL-terminated string of at most <paramref name="max"/> bytes from another process.</summary>
    public static string? ReadString(int pid, ulong address, int max = 256)
    {
        if (address == 0)
            return null;
        byte* buffer = stackalloc byte[max];
        var local = new IoVec { Base = buffer, Length = (nuint)max };
        var remote = new IoVec { Base = (void*)address, Length = (nuint)max };
        nint read = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (read <= 0)
        {
            // The string may end near the end of a mapped page: retry up to the page boundary.
            ulong toPageEnd = 4096 - (address & 4095);
            if (toPageEnd >= (ulong)max)
                return null;
            local.Length = remote.Length = (nuint)toPageEnd;
            read = process_vm_readv(pid, &local, 1, &remote, 1, 0);
            if (read <= 0)
                return null;
        }
        var span = new ReadOnlySpan<byte>(buffer, (int)read);
        int end = span.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end >= 0 ? span[..end] : span);
    }
}
