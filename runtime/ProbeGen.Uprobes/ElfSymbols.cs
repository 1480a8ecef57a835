using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using ELFSharp.ELF;
using ELFSharp.ELF.Sections;
using ELFSharp.ELF.Segments;

namespace ProbeGen.Uprobes;

/// <summary>Why a spec cannot be attached; carries the message a user sees.</summary>
/// <param name="message">What went wrong and what to do.</param>
/// <param name="environment">True when the spec is fine but the machine refuses (no permission, no uprobe PMU): a run-time failure rather than bad input.</param>
public sealed class UprobeException(string message, bool environment = false) : Exception(message)
{
    /// <summary>True when the spec is fine but the machine refuses.</summary>
    public bool IsEnvironment { get; } = environment;
}

/// <summary>Resolves symbols of an ELF x86-64 file to file offsets, with ELFSharp.</summary>
public static class ElfSymbols
{
    /// <summary>
    /// The file offset of <paramref name="symbol"/>: looked up in <c>.symtab</c>, then <c>.dynsym</c>,
    /// and mapped from its virtual address through the PT_LOAD segment that contains it.
    /// </summary>
    /// <exception cref="UprobeException">Not ELF x86-64, stripped, or no such symbol (with close matches).</exception>
    public static ulong ResolveOffset(string path, string symbol)
    {
        using ELF<ulong> elf = Load(path);
        var functions = new Dictionary<string, ulong>(StringComparer.Ordinal);
        bool hasSymtab = false;
        foreach (string table in new[] { ".symtab", ".dynsym" })
        {
            if (!elf.TryGetSection(table, out Section<ulong>? section) || section is not SymbolTable<ulong> symbols)
                continue;
            hasSymtab |= table == ".symtab";
            foreach (SymbolEntry<ulong> entry in symbols.Entries)
            {
                if (entry.Type == SymbolType.Function && entry.Value != 0 && entry.Name.Length > 0)
                    functions.TryAdd(entry.Name, entry.Value);
            }
            if (functions.TryGetValue(symbol, out ulong address))
                return FileOffset(elf, address, path, symbol);
        }
        if (!hasSymtab && functions.Count == 0)
            throw new UprobeException($"{path} is stripped: it has no symbol table; give an offset instead (BINARY:0xOFFSET)");
        string[] close = functions.Keys
            .Select(name => (Name: name, Distance: Distance(name, symbol)))
            .Where(c => c.Distance <= Math.Max(2, symbol.Length / 3) || c.Name.Contains(symbol, StringComparison.Ordinal))
            .OrderBy(c => c.Distance).Take(5).Select(c => c.Name).ToArray();
        throw new UprobeException(close.Length > 0
            ? $"{path} has no function '{symbol}'; close matches: {string.Join(", ", close)}"
            : $"{path} has no function '{symbol}'{(hasSymtab ? "" : " (it has no .symtab, only dynamic symbols: it may be stripped)")}");
    }

    /// <summary>The size in bytes of the function <paramref name="symbol"/>, as its symbol table entry gives it; 0 when unknown.</summary>
    internal static ulong FunctionSize(string path, string symbol)
    {
        using ELF<ulong> elf = Load(path);
        foreach (string table in new[] { ".symtab", ".dynsym" })
        {
            if (!elf.TryGetSection(table, out Section<ulong>? section) || section is not SymbolTable<ulong> symbols)
                continue;
            foreach (SymbolEntry<ulong> entry in symbols.Entries)
            {
                if (entry.Type == SymbolType.Function && entry.Value != 0 && entry.Name == symbol)
                    return entry.Size;
            }
        }
        return 0;
    }

    /// <summary>The spec's binary, as a full path, and the file offset it probes; the file is checked either way.</summary>
    internal static (string Path, ulong Offset) Resolve(UprobeSpec spec)
    {
        string path = Path.GetFullPath(spec.Binary);
        if (spec.Offset is not { } offset)
            return (path, ResolveOffset(path, spec.Symbol!));
        Load(path).Dispose();
        return (path, offset);
    }

    /// <summary>Checks that <paramref name="path"/> is an ELF x86-64 file and returns it opened.</summary>
    internal static ELF<ulong> Load(string path)
    {
        if (!File.Exists(path))
            throw new UprobeException($"no such file: {path}");
        if (!ELFReader.TryLoad(path, out IELF? loaded))
            throw new UprobeException($"{path} is not an ELF file");
        if (loaded is not ELF<ulong> elf || elf.Machine != Machine.AMD64)
        {
            loaded.Dispose();
            throw new UprobeException($"{path} is not ELF x86-64 (it is {loaded.Class} {loaded.Machine})");
        }
        return elf;
    }

    private static ulong FileOffset(ELF<ulong> elf, ulong address, string path, string symbol)
    {
        foreach (Segment<ulong> segment in elf.Segments)
        {
            ulong size = (ulong)segment.FileSize, offset = (ulong)segment.Offset;
            if (segment.Type == SegmentType.Load && address >= segment.Address && address < segment.Address + size)
                return address - segment.Address + offset;
        }
        throw new UprobeException($"{path}: '{symbol}' at 0x{address:x} lies in no loadable segment");
    }

    private static int Distance(string a, string b)
    {
        var row = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
            row[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            int previous = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int current = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), previous + (a[i - 1] == b[j - 1] ? 0 : 1));
                previous = current;
            }
        }
        return row[b.Length];
    }
}
