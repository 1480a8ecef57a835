using System;
using System.Collections.Generic;
using System.Globalization;

namespace ProbeGen.Uprobes;

/// <summary>The type of one captured value, as a spec's type list names it.</summary>
public enum ArgType
{
    /// <summary>Signed 8-bit.</summary>
    I8,
    /// <summary>Signed 16-bit.</summary>
    I16,
    /// <summary>Signed 32-bit.</summary>
    I32,
    /// <summary>Signed 64-bit.</summary>
    I64,
    /// <summary>Unsigned 8-bit.</summary>
    U8,
    /// <summary>Unsigned 16-bit.</summary>
    U16,
    /// <summary>Unsigned 32-bit.</summary>
    U32,
    /// <summary>Unsigned 64-bit.</summary>
    U64,
    /// <summary>A pointer, printed in hex.</summary>
    Ptr,
    /// <summary>A NUL-terminated string read from the tracee (bounded).</summary>
    Str,
}

/// <summary>
/// A parsed uprobe spec: <c>BINARY:SYMBOL[(TYPES)]</c>, <c>BINARY:SYMBOL%return[(TYPE)]</c> or
/// <c>BINARY:0xOFFSET[(TYPES)]</c>, with TYPES a comma list of i8 i16 i32 i64 u8 u16 u32 u64 ptr str.
/// </summary>
/// <param name="Text">The spec as written.</param>
/// <param name="Binary">The ELF file.</param>
/// <param name="Symbol">The function, or null for an offset spec.</param>
/// <param name="Offset">The file offset, for an offset spec.</param>
/// <param name="Return">True for a <c>%return</c> probe.</param>
/// <param name="Types">What to capture: the System V argument registers in order, or rax for a return.</param>
public sealed record UprobeSpec(string Text, string Binary, string? Symbol, ulong? Offset, bool Return, IReadOnlyList<ArgType> Types)
{
    /// <summary>The most arguments a spec captures: the six System V integer argument registers.</summary>
    public const int MaxArguments = 6;

    /// <summary>
    /// Turns raw register values into the captured values the spec's types name: long for signed
    /// types, ulong for unsigned, hex text for ptr, and for str the string read from the tracee.
    /// </summary>
    /// <param name="raw">The register of each value, in spec order.</param>
    /// <param name="strings">Where <c>str</c> values are read from.</param>
    internal object?[] Decode(ReadOnlySpan<ulong> raw, in StringSource strings)
    {
        var values = new object?[Types.Count];
        for (int i = 0; i < values.Length; i++)
        {
            ulong r = raw[i];
            values[i] = Types[i] switch
            {
                ArgType.I8 => (long)(sbyte)r,
                ArgType.I16 => (long)(short)r,
                ArgType.I32 => (long)(int)r,
                ArgType.I64 => (long)r,
                ArgType.U8 => (ulong)(byte)r,
                ArgType.U16 => (ulong)(ushort)r,
                ArgType.U32 => (ulong)(uint)r,
                ArgType.U64 => r,
                ArgType.Ptr => "0x" + r.ToString("x", CultureInfo.InvariantCulture),
                _ => strings.Read(r),
            };
        }
        return values;
    }

    /// <summary>Parses a spec.</summary>
    /// <exception cref="FormatException">The spec is malformed; the message says how.</exception>
    public static UprobeSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string rest = text.Trim();
        var types = new List<ArgType>();
        int open = rest.IndexOf('(');
        if (open >= 0)
        {
            if (!rest.EndsWith(')'))
                throw new FormatException($"'{text}': the type list must end with ')'");
            foreach (string part in rest[(open + 1)..^1].Split(',', StringSplitOptions.TrimEntries))
            {
                if (part.Length == 0)
                    continue;
                types.Add(part switch
                {
                    "i8" => ArgType.I8, "i16" => ArgType.I16, "i32" => ArgType.I32, "i64" => ArgType.I64,
                    "u8" => ArgType.U8, "u16" => ArgType.U16, "u32" => ArgType.U32, "u64" => ArgType.U64,
                    "ptr" => ArgType.Ptr, "str" => ArgType.Str,
                    _ => throw new FormatException($"'{text}': unknown type '{part}'; the types are i8 i16 i32 i64 u8 u16 u32 u64 ptr str"),
                });
            }
            rest = rest[..open];
        }
        int colon = rest.LastIndexOf(':');
        if (colon <= 0 || colon == rest.Length - 1)
            throw new FormatException($"'{text}' is not BINARY:SYMBOL, BINARY:SYMBOL%return or BINARY:0xOFFSET");
        string binary = rest[..colon];
        string target = rest[(colon + 1)..];
        bool isReturn = target.EndsWith("%return", StringComparison.Ordinal);
        if (isReturn)
            target = target[..^"%return".Length];
        if (types.Count > (isReturn ? 1 : MaxArguments))
            throw new FormatException(isReturn
                ? $"'{text}': a %return probe captures one value (rax)"
                : $"'{text}': at most {MaxArguments} arguments (rdi, rsi, rdx, rcx, r8, r9)");
        if (target.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            if (!ulong.TryParse(target[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong offset))
                throw new FormatException($"'{text}': '{target}' is not a hex offset");
            return new UprobeSpec(text, binary, null, offset, isReturn, types);
        }
        if (target.Length == 0)
            throw new FormatException($"'{text}': no symbol");
        return new UprobeSpec(text, binary, target, null, isReturn, types);
    }
}

/// <summary>
/// Where a hit's <c>str</c> arguments are read from: the copy of the thread's stack taken with the
/// hit, when the string lies in it (exact even if the buffer changes right after), else the live
/// process.
/// </summary>
internal readonly ref struct StringSource
{
    /// <summary>The longest string read, in bytes.</summary>
    public const int MaxLength = 256;

    private readonly int _tid;
    private readonly ulong _stackPointer;
    private readonly ReadOnlySpan<byte> _stack;
    private readonly (ulong Address, string? Value)[]? _fetched;

    /// <summary>Reads from the live process only (a ptrace-stopped thread's memory cannot change under us).</summary>
    /// <param name="tid">A thread of the process (any thread reads the shared memory, even when the leader has exited).</param>
    public StringSource(int tid) => _tid = tid;

    /// <summary>Only strings the kernel fetched at the hit, by the pointer they were fetched from.</summary>
    public StringSource((ulong Address, string? Value)[] fetched) => _fetched = fetched;

    /// <summary>Reads from a copy of the stack from <paramref name="stackPointer"/> up, then the live process.</summary>
    public StringSource(int tid, ulong stackPointer, ReadOnlySpan<byte> stack)
    {
        _tid = tid;
        _stackPointer = stackPointer;
        _stack = stack;
    }

    /// <summary>The NUL-terminated string at <paramref name="address"/>, clipped to <see cref="MaxLength"/> bytes; null for NULL or unreadable memory.</summary>
    public string? Read(ulong address)
    {
        if (address == 0)
            return null;
        if (_fetched is not null)
        {
            foreach (var (at, value) in _fetched)
                if (at == address)
                    return value;
            return null;
        }
        if (address >= _stackPointer && address - _stackPointer < (ulong)_stack.Length)
        {
            ReadOnlySpan<byte> from = _stack[(int)(address - _stackPointer)..];
            int end = from.IndexOf((byte)0);
            if (end >= 0 || from.Length >= MaxLength)
                return System.Text.Encoding.UTF8.GetString(from[..Math.Min(end >= 0 ? end : from.Length, MaxLength)]);
            // Runs past the end of the copy: read it live.
        }
        return Native.ReadString(_tid, address, MaxLength);
    }
}
