using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace ProbeGen.Control;

/// <summary>
/// The <c>--where</c> language: argument names, <c>ret</c> and <c>elapsed</c> (nanoseconds);
/// numbers, strings, <c>true</c>, <c>false</c>, <c>null</c>; <c>== != &lt; &lt;= &gt; &gt;=</c>,
/// <c>&amp;&amp; || !</c> and parentheses.
/// </summary>
/// <remarks>
/// It arrives over a control channel, so it is data, never code: the grammar has no calls, no
/// member access and no types, and evaluation never runs the app's code (a value of a type other
/// than a number, string, bool or enum compares only with <c>null</c>; see
/// <see cref="WhereValueKind.Opaque"/>); a redacted argument cannot be named at all. The parser
/// bounds input length, nesting and literal sizes, and evaluation is a walk over a tree whose size the parser already bounded. No loop, no recursion
/// that the input can make unbounded. It is parsed once per enable and bound once per probe.
/// </remarks>
public sealed class WhereFilter
{
    /// <summary>The longest expression accepted, in characters.</summary>
    public const int MaxLength = 4096;

    /// <summary>The deepest nesting of parentheses and operators accepted.</summary>
    public const int MaxDepth = 32;

    internal const int MaxLiteralLength = 1024;

    private readonly WhereNode _root;

    private WhereFilter(string text, WhereNode root)
    {
        Text = text;
        _root = root;
    }

    /// <summary>The expression as written.</summary>
    public string Text { get; }

    /// <summary>Parses an expression, or says exactly what is wrong with it.</summary>
    public static bool TryParse(string text, out WhereFilter? filter, out string? error)
    {
        filter = null;
        if (text is null || text.Trim().Length == 0)
        {
            error = "the --where expression is empty";
            return false;
        }
        if (text.Length > MaxLength)
        {
            error = $"the --where expression is {text.Length} characters long; the limit is {MaxLength}";
            return false;
        }
        try
        {
            var parser = new WhereParser(text);
            WhereNode root = parser.ParseExpression(0);
            parser.ExpectEnd();
            filter = new WhereFilter(text, root);
            error = null;
            return true;
        }
        catch (FormatException ex)
        {
            error = ex.Message;
            return false;
        }
    }

    /// <summary>The names the expression refers to (argument names, <c>ret</c>, <c>elapsed</c>).</summary>
    public IReadOnlyCollection<string> Names
    {
        get
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            _root.CollectNames(names);
            return names;
        }
    }

    /// <summary>
    /// Binds the expression to one probe: resolves names to argument indexes and checks types.
    /// </summary>
    /// <returns>The predicate, or null with <paramref name="error"/> when the probe cannot satisfy it.</returns>
    public HitPredicate? Bind(ProbeDescriptor probe, out string? error)
    {
        try
        {
            WhereEvaluator evaluator = _root.Bind(probe);
            if (!evaluator.IsCondition)
                throw new FormatException($"'{Text}' is not a condition: it has no comparison");
            error = null;
            return (in ProbeHit hit) => evaluator.Evaluate(in hit).IsTrue;
        }
        catch (FormatException ex)
        {
            error = ex.Message;
            return null;
        }
    }

    /// <inheritdoc />
    public override string ToString() => Text;

}

/// <summary>A bound <see cref="WhereFilter"/>: true when the hit passes.</summary>
public delegate bool HitPredicate(in ProbeHit hit);
