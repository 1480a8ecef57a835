using System;
using System.Collections.Generic;

namespace ProbeGen;

/// <summary>
/// A glob over probe ids: <c>*</c> matches any run of characters and <c>?</c> one character.
/// <c>orders:*</c> is every probe of the <c>orders</c> provider, <c>*:charge</c> every probe named
/// <c>charge</c>, <c>*</c> every probe. Matching is ordinal and case-sensitive.
/// </summary>
public sealed class ProbePattern
{
    /// <summary>The longest pattern accepted, in characters: longer than any id a provider and a name can make.</summary>
    public const int MaxLength = 512;

    /// <summary>For a pattern made by <see cref="AnyOf"/>, its distinct alternatives; else null.</summary>
    private readonly ProbePattern[]? _alternatives;

    private ProbePattern(string text)
    {
        Text = text;
        int wildcard = text.AsSpan().IndexOfAny('*', '?');
        LiteralPrefix = wildcard < 0 ? text : text[..wildcard];
        IsExact = wildcard < 0;
    }

    private ProbePattern(ProbePattern[] alternatives)
    {
        _alternatives = alternatives;
        Text = string.Join(" ", Array.ConvertAll(alternatives, a => a.Text));
        string prefix = alternatives[0].LiteralPrefix;
        foreach (ProbePattern a in alternatives)
            prefix = prefix[..prefix.AsSpan().CommonPrefixLength(a.LiteralPrefix)];
        LiteralPrefix = prefix;
    }

    /// <summary>
    /// One pattern that matches an id when any of <paramref name="patterns"/> does. Duplicates are
    /// dropped, so a consumer attached with it is bound, and called, once per probe however many
    /// of the patterns match that probe.
    /// </summary>
    /// <exception cref="ArgumentException">No pattern was given.</exception>
    public static ProbePattern AnyOf(IEnumerable<ProbePattern> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        var distinct = new List<ProbePattern>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (ProbePattern pattern in patterns)
            foreach (ProbePattern single in pattern._alternatives ?? [pattern])
                if (seen.Add(single.Text))
                    distinct.Add(single);
        if (distinct.Count == 0)
            throw new ArgumentException("Give at least one pattern.", nameof(patterns));
        return distinct.Count == 1 ? distinct[0] : new ProbePattern(distinct.ToArray());
    }

    /// <summary>The pattern as written; for one made by <see cref="AnyOf"/>, its alternatives separated by spaces.</summary>
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
        if (pattern.Length > MaxLength)
        {
            error = $"A probe pattern is {pattern.Length} characters long; the limit is {MaxLength}.";
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
    public bool Matches(string id)
    {
        if (_alternatives is null)
            return IsExact ? string.Equals(id, Text, StringComparison.Ordinal) : Glob(Text, id);
        foreach (ProbePattern alternative in _alternatives)
            if (alternative.Matches(id))
                return true;
        return false;
    }

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
