using System;

namespace ProbeGen;

/// <summary>
/// A glob over probe ids: <c>*</c> matches any run of characters and <c>?</c> one character.
/// <c>orders:*</c> is every probe of the <c>orders</c> provider, <c>*:charge</c> every probe named
/// <c>charge</c>, <c>*</c> every probe. Matching is ordinal and case-sensitive.
/// </summary>
public sealed class ProbePattern
{
    private ProbePattern(string text)
    {
        Text = text;
        int wildcard = text.AsSpan().IndexOfAny('*', '?');
        LiteralPrefix = wildcard < 0 ? text : text[..wildcard];
        IsExact = wildcard < 0;
    }

    /// <summary>The pattern as written.</summary>
    public string Text { get; }

    /// <summary>The characters before the first wildcard: every match starts with them.</summary>
    public string LiteralPrefix { get; }

    /// <summary>True when the pattern has no wildcard and names one id.</summary>
    public bool IsExact { get; }

    /// <summary>Parses a pattern.</summary>
    /// <exception cref="ArgumentException">The pattern is empty, has whitespace or control characters, more than one ':', or an empty side of the ':'.</exception>
    public static ProbePattern Parse(string pattern)
    {
        if (!TryParse(pattern, out ProbePattern? parsed, out string? error))
            throw new ArgumentException(error, nameof(pattern));
        return parsed!;
    }

    /// <summary>Parses a pattern, or says what is wrong with it.</summary>
    public static bool TryParse(string? pattern, out ProbePattern? parsed, out string? error)
    {
        parsed = null;
        if (string.IsNullOrEmpty(pattern))
        {
            error = "A probe pattern cannot be empty; use '*' for every probe.";
            return false;
        }
        int colons = 0;
        foreach (char c in pattern)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c))
            {
                error = $"The probe pattern '{pattern}' contains whitespace or a control character.";
                return false;
            }
            if (c == ':')
                colons++;
        }
        int colon = pattern.IndexOf(':');
        if (colons > 1 || colon == 0 || colon == pattern.Length - 1)
        {
            error = $"The probe pattern '{pattern}' is not PROVIDER:NAME (each side may use * and ?), nor a glob over whole ids.";
            return false;
        }
        error = null;
        parsed = new ProbePattern(pattern);
        return true;
    }

    /// <summary>True when <paramref name="id"/> matches the pattern.</summary>
    public bool Matches(string id) => IsExact ? string.Equals(id, Text, StringComparison.Ordinal) : Glob(Text, id);

    /// <inheritdoc />
    public override string ToString() => Text;

    /// <summary>Greedy glob with one backtrack point: linear in practice, O(n·m) at worst, never exponential.</summary>
    private static bool Glob(ReadOnlySpan<char> pattern, ReadOnlySpan<char> text)
    {
        int p = 0, t = 0, star = -1, resume = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == text[t]))
            {
                p++;
                t++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                resume = t;
            }
            else if (star >= 0)
            {
                p = star + 1;
                t = ++resume;
            }
            else
            {
                return false;
            }
        }
        while (p < pattern.Length && pattern[p] == '*')
            p++;
        return p == pattern.Length;
    }
}
