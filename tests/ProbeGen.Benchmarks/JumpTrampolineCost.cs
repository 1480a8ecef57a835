using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using Iced.Intel;
using ProbeGen.Uprobes;
using ProbeGen.Uprobes.Jump;
using static Iced.Intel.AssemblerRegisters;

namespace ProbeGen.Benchmarks;

/// <summary>
/// Where a jump backend hit's time goes, in this process (<c>--quick --jump-profile</c>): a
/// gcc-built function patched with the real trampoline and called in a loop (recording, and into
/// a full ring, which only counts a drop), against the unpatched call; the trampoline's parts
/// alone, each in a generated loop (rdtsc, an uncontended lock cmpxchg); and the first store to
/// each record of a new memfd ring mapped with MAP_POPULATE, cold and after stores through the
/// same mapping. That last pair is why the session warms the ring from inside the target
/// (<see cref="JumpRingMemory"/>). Informational rows: they say what to change, not whether a
/// target is met.
/// </summary>
internal static unsafe class JumpTrampolineCost
{
    private const int Calls = 60_000, Capacity = 1 << 16;

    public static List<Row> Measure()
    {
        var rows = new List<Row>();
        string directory = Directory.CreateTempSubdirectory("probegen-jump-cost-").FullName;
        try
        {
            string library = Path.Combine(directory, "libcost.so");
            File.WriteAllText(Path.Combine(directory, "cost.c"), "__attribute__((noipa)) long wide(long x) { return x + 0x12345678; }\n"
                + "long loop(long (*f)(long), long n) { long s = 0; for (long i = 0; i < n; i++) s += f(i); return s; }\n");
            using (Process gcc = Process.Start("gcc", ["-O1", "-shared", "-fPIC", "-o", library, Path.Combine(directory, "cost.c")])!)
                gcc.WaitForExit();
            nint handle = NativeLibrary.Load(library);
            nint wide = NativeLibrary.GetExport(handle, "wide");
            var loop = (delegate* unmanaged<nint, long, long>)NativeLibrary.GetExport(handle, "loop");

            double bare = Best(() => loop(wide, Calls)) / Calls;
            byte* ring = (byte*)NativeMemory.AlignedAlloc((nuint)JumpRing.Size(Capacity), 4096);
            int tidOffset = ThreadIdOffset.FindInThisProcess();
            byte[] original = Patch(wide, ring, tidOffset);
            // The ring as Initialize left it, as the session's is once warmed.
            double recording = Best(() => loop(wide, Calls), () => JumpRing.Initialize(ring, Capacity)) / Calls;
            // Full: each hit only counts a drop.
            JumpRing.Initialize(ring, Capacity);
            loop(wide, Capacity);
            double full = Best(() => loop(wide, Calls)) / Calls;
            Marshal.Copy(original, 0, wide, original.Length);
            NativeMemory.AlignedFree(ring);

            rows.Add(Info("jump_profile_unpatched_call", bare, "a call of the gcc-built function"));
            rows.Add(Info("jump_profile_hit", recording - bare, "a recorded hit (tid, rdtsc, one register), net of the call; the ring written once before by this thread"));
            rows.Add(Info("jump_profile_hit_full_ring", full - bare, "a hit that finds the ring full and counts a drop (no record written), net of the call"));

            double empty = Part(a => a.nop());
            rows.Add(Info("jump_profile_rdtsc", Part(a => a.rdtsc()) - empty, "rdtsc alone"));
            rows.Add(Info("jump_profile_lock_cmpxchg", Part(a => { a.mov(rax, __qword_ptr[rsi]); a.lea(rdx, __[rax + 1]); a.@lock.cmpxchg(__qword_ptr[rsi], rdx); }) - empty, "an uncontended lock cmpxchg on a line of this core's"));
            rows.Add(Info("jump_profile_first_store_memfd_cold", FirstStores(warmed: false), "the first store to each 128-byte record of a new 8 MB memfd mapped MAP_SHARED | MAP_POPULATE"));
            rows.Add(Info("jump_profile_first_store_memfd_warmed", FirstStores(warmed: true), "the same, after a store to every line through the same mapping (what the session does at attach)"));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
        return rows;
    }

    private static Row Info(string name, double ns, string what) =>
        new(name, ns, null, null, null, "informational (where a hit's time goes)", null, 0, Detail: what);

    /// <summary>The fastest of seven runs, in ns, after <paramref name="before"/> (untimed) each time.</summary>
    private static double Best(Action run, Action? before = null)
    {
        double best = double.MaxValue;
        for (int i = 0; i < 7; i++)
        {
            before?.Invoke();
            long start = Stopwatch.GetTimestamp();
            run();
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalNanoseconds);
        }
        return best;
    }

    /// <summary>ns per turn of a generated loop of <see cref="Calls"/> turns around <paramref name="body"/> (rsi: a private line).</summary>
    private static double Part(Action<Assembler> body)
    {
        var a = new Assembler(64);
        Label top = a.CreateLabel();
        a.push(rbx);
        a.sub(rsp, 64 + 8);
        a.mov(rsi, rsp);
        a.mov(__qword_ptr[rsi], 0);
        a.mov(rcx, Calls);
        a.Label(ref top);
        body(a);
        a.dec(rcx);
        a.jnz(top);
        a.add(rsp, 64 + 8);
        a.pop(rbx);
        a.ret();
        var code = Emit(a);
        try
        {
            var f = (delegate* unmanaged<void>)code;
            return Best(() => f()) / Calls;
        }
        finally
        {
            Native.munmap((void*)code, 4096);
        }
    }

    /// <summary>ns per store of one word to each 128-byte record of a new memfd ring, the fastest of seven rings.</summary>
    private static double FirstStores(bool warmed)
    {
        const long Size = (long)Capacity * JumpRing.RecordSize;
        double best = double.MaxValue;
        for (int run = 0; run < 7; run++)
        {
            int fd = memfd_create("probegen-jump-cost", 1);
            ftruncate(fd, Size);
            byte* ring = (byte*)Native.mmap(null, (nuint)Size, Native.ProtRead | Native.ProtWrite, Native.MapShared | Native.MapPopulate, fd, 0);
            Native.close(fd);
            if (warmed)
                for (long line = 0; line < Size; line += 64)
                    System.Threading.Volatile.Write(ref *(long*)(ring + line), 0);
            long start = Stopwatch.GetTimestamp();
            for (long record = 0; record < Capacity; record++)
                System.Threading.Volatile.Write(ref *(long*)(ring + record * JumpRing.RecordSize), record + 1);
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalNanoseconds / Capacity);
            Native.munmap(ring, (nuint)Size);
        }
        return best;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int memfd_create(string name, uint flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int ftruncate(int fd, long length);

    private static nint Emit(Assembler a)
    {
        void* page = Native.mmap(null, 4096, 3, 0x22, -1, 0);
        var writer = new Bytes();
        a.Assemble(writer, (ulong)page);
        Marshal.Copy(writer.Data.ToArray(), 0, (nint)page, writer.Data.Count);
        Native.mprotect(page, 4096, 5);
        return (nint)page;
    }

    /// <summary>Writes the real trampoline near <paramref name="function"/> and a jump to it over its entry; returns the original bytes.</summary>
    private static byte[] Patch(nint function, byte* ring, int tidOffset)
    {
        byte[] code = new byte[16];
        Marshal.Copy(function, code, 0, code.Length);
        var displaced = JumpSite.Analyze(code.AsSpan(0, 9), (ulong)function, "wide");
        nint page = MapNear(function);
        var plan = new TrampolinePlan((ulong)ring, Capacity, 1, tidOffset, -1, Environment.ProcessId, displaced, displaced[^1].NextIP, SaveFlags: false, Registers: 1);
        byte[] trampoline = JumpTrampoline.Emit(plan, (ulong)page);
        Marshal.Copy(trampoline, 0, page, trampoline.Length);
        Native.mprotect((void*)page, 4096, 5);
        byte[] original = code[..JumpSite.PatchLength];
        Native.mprotect((void*)(function & ~(nint)4095), 8192, 7);
        byte[] jump = [0xE9, .. BitConverter.GetBytes(checked((int)((long)page - ((long)function + JumpSite.PatchLength))))];
        Marshal.Copy(jump, 0, function, jump.Length);
        return original;
    }

    /// <summary>A page within reach of a rel32 jump from <paramref name="address"/>, in a gap of this process's memory map (the runtime reserves large ranges, so blind hints fail).</summary>
    private static nint MapNear(nint address)
    {
        var mapped = File.ReadLines("/proc/self/maps")
            .Select(line => line[..line.IndexOf(' ')].Split('-'))
            .Select(range => (Start: Convert.ToInt64(range[0], 16), End: Convert.ToInt64(range[1], 16)))
            .OrderBy(m => m.Start)
            .ToList();
        for (int i = 0; i + 1 < mapped.Count; i++)
        {
            long gapStart = mapped[i].End, gapEnd = mapped[i + 1].Start;
            if (gapEnd - gapStart < 4096)
                continue;
            long candidate = address < gapStart ? gapStart : address >= gapEnd ? gapEnd - 4096 : address & ~4095L;
            if (Math.Abs(candidate - address) > 0x7000_0000)
                continue;
            void* page = Native.mmap((void*)candidate, 4096, 3, 0x22 | 0x100000, -1, 0);
            if ((nint)page != -1)
                return (nint)page;
        }
        throw new InvalidOperationException("no free page within 2 GB");
    }

    private sealed class Bytes : CodeWriter
    {
        public List<byte> Data { get; } = [];

        public override void WriteByte(byte value) => Data.Add(value);
    }
}
