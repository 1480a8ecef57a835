using System;

namespace ProbeGen.Uprobes;

/// <summary>
/// The registry key of a native probe: the file, by device and inode, and the probed file offset.
/// An inode number is unique only within one file system, so the device is part of the key: the
/// same function in a binary on another file system (another mount, a container's layer) is
/// another probe.
/// </summary>
/// <param name="Device">The device of the file system that holds the ELF file (st_dev, as glibc encodes a dev_t).</param>
/// <param name="Inode">The ELF file's inode (st_ino).</param>
/// <param name="Offset">The file offset of the probed instruction.</param>
/// <param name="Return">True for a return probe, which is a separate probe at the same place.</param>
public readonly record struct UprobeKey(ulong Device, ulong Inode, ulong Offset, bool Return) : IComparable<UprobeKey>
{
    /// <summary>Orders by device, inode, offset, then entry before return: one file's probes are one range.</summary>
    public int CompareTo(UprobeKey other)
    {
        int c = Device.CompareTo(other.Device);
        if (c == 0)
            c = Inode.CompareTo(other.Inode);
        if (c == 0)
            c = Offset.CompareTo(other.Offset);
        return c != 0 ? c : Return.CompareTo(other.Return);
    }
}
