using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.RegularExpressions;
using CsCheck;
using ProbeGen.Concurrency;
using ProbeGen.Registry;
using Xunit;

namespace ProbeGen.Tests;

/// <summary>Generated-input tests, shrunk to a minimal counterexample on failure (CsCheck).</summary>
public class PropertyTests
{
    /// <summary>Any sequence of adds and removes leaves the registry equal to a SortedDictionary model.</summary>
    [Fact]
    public void RegistryAgreesWithAModel()
    {
        Gen.Int[-300, 300].Array[0, 400].Sample(ops =>
        {
            // Positive: add that key; negative: remove its absolute value. Colliding hashes make
            // backward-shift deletions move entries around.
            var registry = new LocklessRegistry<long, Node>(new SrcuDomain("property"), equality: new CollidingComparer());
            var model = new SortedDictionary<long, Node>();
            foreach (int op in ops)
            {
                long key = Math.Abs(op);
                if (op >= 0)
                {
                    var node = new Node(key);
                    if (registry.TryAdd(node) != model.TryAdd(key, node))
                        return false;
                }
                else if (model.Remove(key, out Node? old) != (registry.Remove(key) is not null))
                {
                    return false;
                }
            }
            for (long k = 0; k <= 300; k++)
                if (!ReferenceEquals(registry.Find(k), model.GetValueOrDefault(k)))
                    return false;
            return registry.Snapshot().Select(n => n.Key).SequenceEqual(model.Keys);
        }, iter: 300);
    }

    /// <summary>The glob matcher agrees with an anchored regular expression built from the same pattern.</summary>
    [Fact]
    public void GlobAgreesWithRegex()
    {
        Gen<string> text = Gen.OneOfConst('a', 'b', ':').Array[0, 10].Select(c => new string(c));
        Gen<string> pattern = Gen.OneOfConst('a', 'b', '*', '?').Array[1, 8].Select(c => new string(c));
        Gen.Select(pattern, text).Sample((p, t) =>
        {
            var regex = new Regex("^" + Regex.Escape(p).Replace("\\*", ".*").Replace("\\?", ".") + "$", RegexOptions.Singleline);
            return ProbePattern.Parse(p).Matches(t) == regex.IsMatch(t);
        }, iter: 2000);
    }

    /// <summary>Hostile patterns are rejected or matched in bounded time, never with an exception other than ArgumentException.</summary>
    [Fact]
    public void PatternParsingNeverThrowsUnexpectedly()
    {
        Gen.Char.Array[0, 40].Select(c => new string(c)).Sample(p =>
        {
            if (!ProbePattern.TryParse(p, out ProbePattern? parsed, out string? error))
                return error is { Length: > 0 } && parsed is null;
            parsed!.Matches(new string('a', 100));  // must not throw
            return parsed.Text == p;
        }, iter: 2000);
        // The classic exponential-backtracking shape stays linear-ish.
        Assert.False(ProbePattern.Parse(string.Concat(Enumerable.Repeat("*a", 30)) + "b").Matches(new string('a', 5000)));
    }
}
