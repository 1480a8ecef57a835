using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace ProbeGen.Concurrency;

/// <summary>
/// One thread's read-side nesting counters for one <see cref="SrcuDomain"/>.
/// </summary>
/// <remarks>
/// <see cref="Count0"/> and <see cref="Count1"/> are written only by <see cref="Owner"/> (plain
/// read-modify-write, volatile store) and read by the grace-period scan. The explicit layout
/// pads them onto a cache line of their own, so two readers never share a line.
/// </remarks>
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal sealed class ReaderSlot
{
    [FieldOffset(64)] public int Count0;
    [FieldOffset(68)] public int Count1;

    /// <summary>The thread that owns the slot; a slot of a dead thread is ignored by scans.</summary>
    [FieldOffset(72)] public readonly Thread Owner;

    /// <summary>The domain the slot belongs to.</summary>
    [FieldOffset(80)] public readonly SrcuDomain Domain;

    public ReaderSlot(SrcuDomain domain, Thread owner)
    {
        Domain = domain;
        Owner = owner;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref int Counter(int index) => ref Unsafe.Add(ref Count0, index);
}
