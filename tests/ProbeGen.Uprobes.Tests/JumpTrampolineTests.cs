using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Threading;
using Iced.Intel;
using ProbeGen.Uprobes.Jump;
using Xunit;

namespace ProbeGen.Uprobes.Tests;

/// <summary>
/// The trap-free backend's per-hit half, in this process: a real gcc-built library is loaded,
/// its functions' entries are patched with a jump to generated trampolines, and real calls from
/// four threads write records into the ring that a reader here drains. No ptrace and no kernel
/// uprobe are involved, so what is checked is the trampoline, the ring and the relocation alone.
/// </summary>
public sealed unsafe class JumpTrampolineTests : IDisposable
{
    private const string Source = """
        #include <string.h>
        __attribute__((noipa)) long add6(long a, long b, long c, long d, long e, long f) { return a + b + c + d + e + f; }
        __attribute__((noipa)) int greet(const char *name, int times) { return (int)strlen(name) * times; }
        __attribute__((noipa)) int peek(const char *maybe) { return maybe != 0; }
        /* A loop whose head is the second instruction: a jump over the entry would cut it. */
        __attribute__((naked)) long jumpy(long n) { __asm__("xor %eax, %eax\n1: add %rdi, %rax\n dec %rdi\n jnz 1b\n ret\n"); }
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("probegen-jump-").FullName;
    private readonly string _library;
    private readonly nint _handle;
    private readonly List<(nint Address, byte[] Original)> _patched = [];

    public JumpTrampolineTests()
    {
        File.WriteAllText(Path.Combine(_directory, "lib.c"), Source);
        _library = Path.Combine(_directory, "libjump.so");
        using Process gcc = Process.Start(new ProcessStartInfo("gcc", ["-O1", "-shared", "-fPIC", "-o", _library, Path.Combine(_directory, "lib.c")]) { RedirectStandardError = true })!;
        string errors = gcc.StandardError.ReadToEnd();
        gcc.WaitForExit();
        Assert.True(gcc.ExitCode == 0, errors);
        _handle = NativeLibrary.Load(_library);
    }

    [Fact]
    public void PatchedFunctionsRecordEveryCallFromFourThreadsWithTheirArgumentsAndStrings()
    {
        const int Threads = 4, Calls = 5_000;
        int capacity = 1 << 16;
        byte* ring = (byte*)NativeMemory.AlignedAlloc((nuint)JumpRing.Size(capacity), 4096);
        try
        {
            JumpRing.Initialize(ring, capacity);
            int tidOffset = ThreadIdOffset.FindInThisProcess();
            Assert.True(tidOffset >= 0, "the C library's thread control block holds the thread id");
            nint add6 = Patch("add6", probe: 1, ring, capacity, tidOffset, stringRegister: -1);
            nint greet = Patch("greet", probe: 2, ring, capacity, tidOffset, stringRegister: 0);
            nint peek = Patch("peek", probe: 3, ring, capacity, tidOffset, stringRegister: 0);

            var tids = new int[Threads];
            var sums = new long[Threads];
            var workers = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
            {
                tids[t] = gettid();
                var f = (delegate* unmanaged<long, long, long, long, long, long, long>)add6;
                var g = (delegate* unmanaged<byte*, int, int>)greet;
                byte* name = stackalloc byte[] { (byte)'p', (byte)'r', (byte)'o', (byte)'b', (byte)'e', 0 };
                for (int i = 0; i < Calls; i++)
                {
                    sums[t] += f(i, 1, 2, 3, 4, t);
                    sums[t] += g(name + (i & 1), 2);  // "probe", then "robe"
                }
            })).ToList();
            workers.ForEach(w => w.Start());
            workers.ForEach(w => w.Join());
            // The functions still compute what they did: the displaced instructions ran.
            for (int t = 0; t < Threads; t++)
                Assert.Equal(Enumerable.Range(0, Calls).Sum(i => (long)i + 10 + t + 2L * (i % 2 == 0 ? 5 : 4)), sums[t]);
            // A pointer nothing is mapped at: the copy fails inside the trampoline, the call goes on.
            Assert.Equal(1, ((delegate* unmanaged<byte*, int>)peek)((byte*)16));

            var records = new List<JumpRecord>();
            while (JumpRing.TryRead(ring, out JumpRecord record))
                records.Add(record);
            Assert.Equal(0, JumpRing.Dropped(ring));
            Assert.Equal(2 * Threads * Calls + 1, records.Count);
            for (int t = 0; t < Threads; t++)
            {
                var adds = records.Where(r => r.Probe == 1 && r.ThreadId == tids[t]).ToList();
                Assert.Equal(Enumerable.Range(0, Calls).Select(i => (long)i), adds.Select(r => r.Registers[0]).Order());
                Assert.All(adds, r => Assert.Equal([1L, 2, 3, 4, t], r.Registers[1..]));
                var greets = records.Where(r => r.Probe == 2 && r.ThreadId == tids[t]).ToList();
                Assert.Equal(Calls / 2, greets.Count(r => r.Text == "probe"));
                Assert.Equal(Calls / 2, greets.Count(r => r.Text == "robe"));
                Assert.All(greets, r => Assert.Equal(2, r.Registers[1]));
            }
            JumpRecord bad = Assert.Single(records, r => r.Probe == 3);
            Assert.Equal(16, bad.Registers[0]);
            Assert.Equal("", bad.Text);
            // Timestamps come from the time stamp counter and only move forward on one thread.
            var first = records.Where(r => r.ThreadId == tids[0]).Select(r => r.Timestamp).ToList();
            Assert.Equal(first.Order(), first);

            // Restored: calls go on and record nothing.
            Unpatch();
            Assert.Equal(21, ((delegate* unmanaged<long, long, long, long, long, long, long>)add6)(1, 2, 3, 4, 5, 6));
            Assert.False(JumpRing.TryRead(ring, out _));
        }
        finally
        {
            Unpatch();
            NativeMemory.AlignedFree(ring);
        }
    }

    [Fact]
    public void AFullRingCountsDropsAndNeverBlocksTheCaller()
    {
        const int Capacity = 64, Calls = 1_000;
        byte* ring = (byte*)NativeMemory.AlignedAlloc((nuint)JumpRing.Size(Capacity), 4096);
        try
        {
            JumpRing.Initialize(ring, Capacity);
            nint add6 = Patch("add6", probe: 1, ring, Capacity, threadIdOffset: -1, stringRegister: -1);
            var f = (delegate* unmanaged<long, long, long, long, long, long, long>)add6;
            for (int i = 0; i < Calls; i++)
                Assert.Equal(i + 15, f(i, 1, 2, 3, 4, 5));
            int read = 0;
            while (JumpRing.TryRead(ring, out JumpRecord record))
            {
                Assert.Equal(read, record.Registers[0]);  // the first records, in order, with the gettid fallback
                Assert.Equal(gettid(), record.ThreadId);
                read++;
            }
            Assert.Equal(Capacity, read);
            Assert.Equal(Calls - Capacity, JumpRing.Dropped(ring));
        }
        finally
        {
            Unpatch();
            NativeMemory.AlignedFree(ring);
        }
    }

    /// <summary>
    /// A producer that loaded the head, was preempted, and meanwhile saw the drainer move the tail
    /// past it, finds tail &gt; head. That is a stale head, not a full ring: it must try again, not
    /// count a drop. The ring's words are set to what such a producer reads; an unsigned comparison
    /// of head - tail with the capacity takes the negative difference for a full ring.
    /// </summary>
    [Fact]
    public void AProducerWhoseHeadIsBehindTheTailRetriesInsteadOfCountingADrop()
    {
        const int Capacity = 64;
        byte* ring = (byte*)NativeMemory.AlignedAlloc((nuint)JumpRing.Size(Capacity), 4096);
        try
        {
            JumpRing.Initialize(ring, Capacity);
            *(long*)(ring + JumpRing.HeadOffset) = 5;
            *(long*)(ring + JumpRing.TailOffset) = 10;
            nint add6 = Patch("add6", probe: 1, ring, Capacity, threadIdOffset: -1, stringRegister: -1);
            var f = (delegate* unmanaged<long, long, long, long, long, long, long>)add6;
            Assert.Equal(42 + 15, f(42, 1, 2, 3, 4, 5));
            Assert.Equal(0, JumpRing.Dropped(ring));
            // Nobody moved the head here, so the retry took ticket 5 and wrote its record.
            Assert.Equal(6, *(long*)(ring + JumpRing.HeadOffset));
            Assert.Equal(6, *(long*)(ring + JumpRing.RecordsOffset + 5 * JumpRing.RecordSize + JumpRing.CommitOffset));
            Assert.Equal(42, *(long*)(ring + JumpRing.RecordsOffset + 5 * JumpRing.RecordSize + JumpRing.RegistersOffset));
        }
        finally
        {
            Unpatch();
            NativeMemory.AlignedFree(ring);
        }
    }

    [Fact]
    public void AFunctionThatBranchesIntoTheJumpsBytesIsRefused()
    {
        (nint address, byte[] code) = FunctionBytes("jumpy");
        var refusal = Assert.Throws<UprobeException>(() => JumpSite.Analyze(code, (ulong)address, "jumpy"));
        Assert.Contains("branches into the bytes the jump would replace", refusal.Message);
        // The same bytes with the loop moved past the window are accepted.
        Assert.NotEmpty(JumpSite.Analyze(FunctionBytes("add6").Code, (ulong)NativeLibrary.GetExport(_handle, "add6"), "add6"));
        Assert.Contains("too short", Assert.Throws<UprobeException>(() => JumpSite.Analyze([0xC3, 0x90], 0x1000, "tiny")).Message);
    }

    /// <summary>Writes the trampoline near the function and the jump over its entry.</summary>
    private nint Patch(string name, uint probe, byte* ring, int capacity, int threadIdOffset, int stringRegister)
    {
        (nint address, byte[] code) = FunctionBytes(name);
        IReadOnlyList<Instruction> displaced = JumpSite.Analyze(code, (ulong)address, name);
        ulong resume = displaced[^1].NextIP;
        nint page = MapNear(address);
        var plan = new TrampolinePlan((ulong)ring, capacity, probe, threadIdOffset, stringRegister, Environment.ProcessId, displaced, resume, SaveFlags: false);
        byte[] trampoline = JumpTrampoline.Emit(plan, (ulong)page);
        Marshal.Copy(trampoline, 0, page, trampoline.Length);
        Assert.Equal(0, mprotect(page, 4096, ProtRead | ProtExec));

        byte[] original = new byte[JumpSite.PatchLength];
        Marshal.Copy(address, original, 0, original.Length);
        nint codePage = address & ~(nint)4095;
        Assert.Equal(0, mprotect(codePage, 8192, ProtRead | ProtWrite | ProtExec));
        long displacement = (long)page - ((long)address + JumpSite.PatchLength);
        byte[] jump = [0xE9, .. BitConverter.GetBytes(checked((int)displacement))];
        Marshal.Copy(jump, 0, address, jump.Length);
        _patched.Add((address, original));
        return address;
    }

    private void Unpatch()
    {
        foreach (var (address, original) in _patched)
            Marshal.Copy(original, 0, address, original.Length);
        _patched.Clear();
    }

    private (nint Address, byte[] Code) FunctionBytes(string name)
    {
        nint address = NativeLibrary.GetExport(_handle, name);
        ulong size = ElfSymbols.Load(_library).GetSection(".symtab") is ELFSharp.ELF.Sections.ISymbolTable table
            ? table.Entries.Cast<ELFSharp.ELF.Sections.SymbolEntry<ulong>>().First(s => s.Name == name).Size
            : throw new InvalidOperationException("no symbol table");
        byte[] code = new byte[size];
        Marshal.Copy(address, code, 0, code.Length);
        return (address, code);
    }

    /// <summary>A page within reach of a rel32 jump from <paramref name="address"/>, in a gap of this process's memory map.</summary>
    private static nint MapNear(nint address)
    {
        const long Reach = 0x7000_0000;
        var mapped = File.ReadLines("/proc/self/maps")
            .Select(line => line[..line.IndexOf(' ')].Split('-'))
            .Select(range => (Start: Convert.ToInt64(range[0], 16), End: Convert.ToInt64(range[1], 16)))
            .OrderBy(m => m.Start)
            .ToList();
        long target = address;
        for (int i = 0; i + 1 < mapped.Count; i++)
        {
            long gapStart = mapped[i].End, gapEnd = mapped[i + 1].Start;
            if (gapEnd - gapStart < 4096)
                continue;
            // The page of the gap closest to the target.
            long candidate = target < gapStart ? gapStart : target >= gapEnd ? gapEnd - 4096 : target & ~4095L;
            if (Math.Abs(candidate - target) > Reach)
                continue;
            nint page = mmap((nint)candidate, 4096, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapFixedNoReplace, -1, 0);
            if (page != -1)
                return page;
        }
        throw new InvalidOperationException("no free page within 2 GB of the library in this process's memory map");
    }

    public void Dispose()
    {
        Unpatch();
        Directory.Delete(_directory, recursive: true);
    }

    private const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 0x02, MapAnonymous = 0x20, MapFixedNoReplace = 0x100000;

    [DllImport("libc", SetLastError = true)]
    private static extern nint mmap(nint address, nint length, int protection, int flags, int fd, nint offset);

    [DllImport("libc", SetLastError = true)]
    private static extern int mprotect(nint address, nint length, int protection);

    [DllImport("libc")]
    private static extern int gettid();
}
