using System.Collections.Generic;
using ProbeGen.Concurrency;
using ProbeGen.Registry;
using Xunit;

namespace ProbeGen.Tests;

/// <summary>The registry with the native engine's key: (inode, offset), ordered by inode then offset.</summary>
public class NativeKeyTests
{
    private readonly record struct InodeOffset(ulong Inode, ulong Offset) : System.IComparable<InodeOffset>
    {
        public int CompareTo(InodeOffset other)
        {
            int byInode = Inode.CompareTo(other.Inode);
            return byInode != 0 ? byInode : Offset.CompareTo(other.Offset);
        }
    }

    private sealed class Uprobe(InodeOffset key) : RegistryEntry<InodeOffset>(key);

    [Fact]
    public void FindByInodeAndOffsetAndScanOneFile()
    {
        var registry = new LocklessRegistry<InodeOffset, Uprobe>(new SrcuDomain("uprobes"));
        foreach (var (inode, offset) in new (ulong, ulong)[] { (7, 0x1139), (7, 0x1040), (9, 0x10), (7, 0x2000), (3, 0x500) })
            registry.Add(new Uprobe(new InodeOffset(inode, offset)));

        using (registry.Domain.Enter())
        {
            Assert.NotNull(registry.Find(new InodeOffset(7, 0x1139)));
            Assert.Null(registry.Find(new InodeOffset(7, 0x1138)));

            // Every probe in one file: the range [(7, 0), (8, 0)).
            var inFile = new List<ulong>();
            foreach (Uprobe u in registry.Range(new InodeOffset(7, 0), new InodeOffset(8, 0)))
                inFile.Add(u.Key.Offset);
            Assert.Equal([0x1040UL, 0x1139UL, 0x2000UL], inFile);
        }
    }
}
