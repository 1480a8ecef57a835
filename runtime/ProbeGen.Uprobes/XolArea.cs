using System.Collections.Generic;
using System.Linq;
using static ProbeGen.Uprobes.Ptrace;
using static ProbeGen.Uprobes.TraceeMemory;

namespace ProbeGen.Uprobes;

/// <summary>
/// The out-of-line area of one image of the tracee, like the kernel's <c>xol_area</c>: read +
/// execute scratch pages that the engine maps into the tracee, one per probed module and within
/// 2 GB of it when it can, holding the displaced instructions and the return trampoline.
/// </summary>
/// <remarks>
/// The kernel can map its page from inside the process; a tracer cannot, so the mmap is a system
/// call injected into a stopped thread. Used only on the tracer thread, while every thread is stopped.
/// </remarks>
internal sealed unsafe class XolArea(PtraceTracer tracer)
{
    private const ulong PageSize = 4096;

    /// <summary>Each module's page (by inode) and its first free byte.</summary>
    private readonly Dictionary<ulong, (ulong Page, ulong Next)> _pages = [];

    /// <summary>
    /// The return trampoline: an int3 at the start of the first page, that threads reach by
    /// returning from a probed function (0 until a page is mapped).
    /// </summary>
    public ulong Trampoline { get; private set; }

    /// <summary>The next free slot in the page of <paramref name="mapping"/>'s module, mapping the page first if need be.</summary>
    public ulong NextSlot(Mapping mapping, IReadOnlyList<Mapping> mappings)
    {
        if (_pages.TryGetValue(mapping.Inode, out var page))
            return page.Next;
        ulong low = mappings.Where(m => m.Inode == mapping.Inode).Min(m => m.Start);
        ulong high = mappings.Where(m => m.Inode == mapping.Inode).Max(m => m.End);
        ulong mapped = MapScratchPage(low, high);
        if (Trampoline == 0)
        {
            Trampoline = mapped;
            WriteBytes(tracer.AnyStopped, Trampoline, [0xCC]);
        }
        _pages[mapping.Inode] = (mapped, mapped + 16);
        return mapped + 16;
    }

    /// <summary>Writes <paramref name="code"/> at the module's next free slot (from <see cref="NextSlot"/>) and moves past it, 16-byte aligned.</summary>
    public void Fill(ulong inode, ulong slot, byte[] code, string path)
    {
        (ulong page, ulong next) = _pages[inode];
        if (next + (ulong)code.Length > page + PageSize)
            throw new UprobeException($"too many probes in {path} for one scratch page");
        WriteBytes(tracer.AnyStopped, slot, code);
        _pages[inode] = (page, next + (ulong)((code.Length + 15) & ~15));
    }

    /// <summary>
    /// Maps a read + execute scratch page in the tracee, within 2 GB of the module at
    /// [<paramref name="low"/>, <paramref name="high"/>) when it can (MAP_FIXED_NOREPLACE, trying
    /// pages just below it, then above it), anywhere otherwise.
    /// </summary>
    private ulong MapScratchPage(ulong low, ulong high) => MapNear(low, high, PageSize, ProtReadExec);

    /// <summary>PROT_READ | PROT_EXEC: the tracer writes such pages through ptrace.</summary>
    public const ulong ProtReadExec = 5;

    /// <summary>
    /// Maps <paramref name="size"/> bytes in the tracee within 2 GB of the module at
    /// [<paramref name="low"/>, <paramref name="high"/>) when it can (MAP_FIXED_NOREPLACE, trying
    /// just below it, then above it), anywhere otherwise.
    /// </summary>
    public ulong MapNear(ulong low, ulong high, ulong size, ulong protection)
    {
        foreach (ulong distance in new ulong[] { 1, 16, 256, 4096, 65536 })
        {
            foreach (ulong hint in new[] { low - distance * PageSize, (high + PageSize - 1) / PageSize * PageSize + (distance - 1) * PageSize })
            {
                if (hint < 0x10000 || hint >= 0x7fff_ffff_0000)
                    continue;
                long got = InjectMmap(hint, 0x100000 /* MAP_FIXED_NOREPLACE */, size, protection);
                if (got == (long)hint)
                    return hint;
                if (got > 0)
                    return (ulong)got;  // a kernel before 4.17 takes the hint as a hint; near or not, it is mapped
            }
        }
        return MapAnywhere(size, protection);
    }

    /// <summary>Maps <paramref name="size"/> bytes anywhere in the tracee, with extra mmap <paramref name="flags"/>.</summary>
    public ulong MapAnywhere(ulong size, ulong protection, ulong flags = 0)
    {
        long anywhere = InjectMmap(0, flags, size, protection);
        if (anywhere < 0)
            throw new UprobeException($"cannot map a scratch page in process {tracer.Pid} (errno {-anywhere})");
        return (ulong)anywhere;
    }

    /// <summary>
    /// Runs mmap(hint, size, protection, MAP_PRIVATE | MAP_ANONYMOUS | flags) in a stopped thread
    /// (<see cref="TraceeSyscall"/>). Returns the address, or -errno.
    /// </summary>
    private long InjectMmap(ulong hint, ulong flags, ulong size, ulong protection)
    {
        long result = TraceeSyscall.Run(tracer, TraceeSyscall.Mmap, hint, size, protection, 0x22 | flags /* MAP_PRIVATE | MAP_ANONYMOUS */, ulong.MaxValue, 0);
        return result < 0 || (result & 0xFFF) != 0 ? (result < 0 ? result : -22) : result;
    }
}
