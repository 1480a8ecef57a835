using ProbeGen.Registry;

namespace ProbeGen.Uprobes;

/// <summary>
/// The native probes attached in this process, shared by both backends and keyed as the kernel
/// keys uprobes: the file and the offset in it, with the file named by (device, inode) since an
/// inode number alone repeats across file systems. This is where the reference thread's
/// <c>find_uprobe(inode, offset)</c> runs: the perf backend before it drains a probe's rings, the
/// ptrace backend on every trap.
/// </summary>
internal static class UprobeRegistry
{
    /// <summary>The attached probes. Lookups run inside read-side sections of <see cref="Probes.Domain"/>.</summary>
    public static LocklessRegistry<UprobeKey, UprobeEntry> Probes { get; } = new(ProbeGen.Probes.Domain);
}

/// <summary>One attached native probe in <see cref="UprobeRegistry"/>.</summary>
/// <param name="key">Where it is: device, inode, file offset, and entry or return.</param>
/// <param name="spec">What it captures.</param>
internal abstract class UprobeEntry(UprobeKey key, UprobeSpec spec) : RegistryEntry<UprobeKey>(key)
{
    /// <summary>What the probe captures.</summary>
    public UprobeSpec Spec { get; } = spec;
}
