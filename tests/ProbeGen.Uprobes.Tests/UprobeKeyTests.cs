using System.Diagnostics;
using System.Globalization;
using System.Linq;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>
/// Native keys name the file by (device, inode): the same function in files of two file systems,
/// which may share an inode number, is two probes, and both backends compute the same key for it.
/// </summary>
public class UprobeKeyTests(NativeTargets targets) : IClassFixture<NativeTargets>
{
    private sealed class Attached(UprobeKey key) : UprobeEntry(key, UprobeSpec.Parse("/twin:0x1139"));

    [Fact]
    public void TheSameInodeAndOffsetOnTwoDevicesStayDistinct()
    {
        var onDisk = new Attached(new UprobeKey(0xfe00, 4242, 0x1139, false));
        var inOverlay = new Attached(new UprobeKey(0x2f, 4242, 0x1139, false));
        Assert.NotEqual(onDisk.Key, inOverlay.Key);
        Assert.NotEqual(0, onDisk.Key.CompareTo(inOverlay.Key));

        Assert.True(UprobeRegistry.Probes.TryAdd(onDisk));
        try
        {
            // Not "already attached": another file system's file.
            Assert.True(UprobeRegistry.Probes.TryAdd(inOverlay));
            Assert.True(UprobeRegistry.Probes.TryAcquire(inOverlay.Key, out UprobeEntry? found));
            Assert.Same(inOverlay, found);
            found!.Release();
            Assert.True(UprobeRegistry.Probes.Remove(inOverlay));
            Assert.True(UprobeRegistry.Probes.TryAcquire(onDisk.Key, out found));
            Assert.Same(onDisk, found);
            found!.Release();
        }
        finally
        {
            UprobeRegistry.Probes.Remove(onDisk);
            UprobeRegistry.Probes.Remove(inOverlay);
        }
    }

    [Fact]
    public void TheDeviceIsStatsAndTheProcessMapsAgree()
    {
        // perf keys come from stat of the binary, ptrace keys from /proc/PID/maps at the trap: for
        // the same file they must be the same key.
        string t = targets["targets"];
        (ulong device, ulong inode) = Native.FileId(t);
        Assert.Equal(ulong.Parse(Stat("%d", t), CultureInfo.InvariantCulture), device);
        Assert.Equal(ulong.Parse(Stat("%i", t), CultureInfo.InvariantCulture), inode);

        using Process target = NativeTargets.Start(t, "1", "1", "0", "5000");
        try
        {
            Ptrace.Mapping mapping = default;
            for (int i = 0; i < 5000 && mapping.Inode != inode; i++)
            {
                mapping = Ptrace.ReadMappings(target.Id).FirstOrDefault(m => m.Inode == inode);
                System.Threading.Thread.Sleep(1);
            }
            Assert.Equal(inode, mapping.Inode);
            Assert.Equal(device, mapping.Device);
        }
        finally
        {
            target.Kill();
        }
    }

    private static string Stat(string format, string path)
    {
        using Process stat = NativeTargets.Start("stat", "-L", "-c", format, path);
        string output = stat.StandardOutput.ReadToEnd().Trim();
        stat.WaitForExit();
        return output;
    }
}
