using System.Collections.Generic;
using ProbeGen.Concurrency;
using ProbeGen.Registry;
using Xunit;

namespace ProbeGen.Tests;

/// <summary>
/// The registry with the native engine's key: (device, inode, offset), ordered by device, then
/// inode, then offset. An inode number is unique only within one file system, so the device is
/// part of the key.
/// </summary>
public class NativeKeyTests
{
    private readonly record struct FileOffset(ulong Device, ulong Inode, ulong Offset) : System.IComparable<FileOffset>
    {
        public int CompareTo(FileOffset other)
        {
            int c = Device.CompareTo(other.Device);
            if (c == 0)
                c = Inode.CompareTo(other.Inode);
            return c != 0 ? c : Offset.CompareTo(other.Offset);
        }
    }

    private sealed class Uprobe(FileOffset key) : RegistryEntry<FileOffset>(key);

    private const ulong Disk = 0xfe00, Overlay = 0x2f;

    [Fact]
    public void FindByDeviceInodeAndOffsetAndScanOneFile()
    {
        var registry = new LocklessRegistry<FileOffset, Uprobe>(new SrcuDomain("uprobes"));
        foreach (var (inode, offset) in new (ulong, ulong)[] { (7, 0x1139), (7, 0x1040), (9, 0x10), (7, 0x2000), (3, 0x500) })
            registry.Add(new Uprobe(new FileOffset(Disk, inode, offset)));
        registry.Add(new Uprobe(new FileOffset(Overlay, 7, 0x1100)));  // inode 7 of another file system

        using (registry.Domain.Enter())
        {
            Assert.NotNull(registry.Find(new FileOffset(Disk, 7, 0x1139)));
            Assert.Null(registry.Find(new FileOffset(Disk, 7, 0x1138)));
            Assert.Null(registry.Find(new FileOffset(Overlay, 7, 0x1139)));

            // Every probe in one file: the range [(disk, 7, 0), (disk, 8, 0)).
            var inFile = new List<ulong>();
            foreach (Uprobe u in registry.Range(new FileOffset(Disk, 7, 0), new FileOffset(Disk, 8, 0)))
                inFile.Add(u.Key.Offset);
            Assert.Equal([0x1040UL, 0x1139UL, 0x2000UL], inFile);
        }
    }

    [Fact]
    public void TheSameInodeAndOffsetOnTwoDevicesAreTwoProbes()
    {
        var registry = new LocklessRegistry<FileOffset, Uprobe>(new SrcuDomain("uprobes"));
        var onDisk = new Uprobe(new FileOffset(Disk, 7, 0x1139));
        var inOverlay = new Uprobe(new FileOffset(Overlay, 7, 0x1139));

        // Neither is a duplicate of the other, each is found by its own key, and removing one leaves the other.
        Assert.True(registry.TryAdd(onDisk));
        Assert.True(registry.TryAdd(inOverlay));
        using (registry.Domain.Enter())
        {
            Assert.Same(onDisk, registry.Find(onDisk.Key));
            Assert.Same(inOverlay, registry.Find(inOverlay.Key));
        }
        Assert.True(registry.Remove(onDisk));
        using (registry.Domain.Enter())
        {
            Assert.Null(registry.Find(onDisk.Key));
            Assert.Same(inOverlay, registry.Find(inOverlay.Key));
        }
    }
}
