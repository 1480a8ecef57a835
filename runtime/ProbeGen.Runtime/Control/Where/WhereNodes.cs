using System;
using System.Collections.Generic;

namespace ProbeGen.Control;

/// <summary>A node bound to one probe, evaluated per hit.</summary>
internal abstract class WhereEvaluator
{
    public abstract WhereValueKind Kind { get; }

    public abstract WhereValue Evaluate(in ProbeHit hit);

    /// <summary>True when the value can stand where a condition is needed.</summary>
    public bool IsCondition => Kind is WhereValueKind.Bool or WhereValueKind.Any;
}

/// <summary>A node of a parsed expression, before it is bound to a probe.</summary>
internal abstract class WhereNode
{
    public abstract WhereEvaluator Bind(ProbeDescriptor probe);

    public virtual void CollectNames(HashSet<string> names)
    {
    }
}

internal sealed class WhereLiteral(WhereValue value) : WhereNode
{
    public override WhereEvaluator Bind(ProbeDescriptor probe) => new Constant(value);

    private sealed class Constant(WhereValue value) : WhereEvaluator
    {
        public override WhereValueKind Kind => value.Kind;

        public override WhereValue Evaluate(in ProbeHit hit) => value;
    }
}

/// <summary>An argument name, <c>ret</c> or <c>elapsed</c>.</summary>
internal sealed class WhereName(string name) : WhereNode
{
    public override void CollectNames(HashSet<string> names) => names.Add(name);

    public override WhereEvaluator Bind(ProbeDescriptor probe)
    {
        int index = probe.IndexOfParameter(name);
        if (index >= 0)
        {
            ProbeParameter parameter = probe.Parameters[index];
            // A redacted value must not be guessable one comparison at a time.
            if (ProbeRedaction.IsRedacted(parameter))
                throw new FormatException($"the argument '{name}' of the probe '{probe.Id}' is redacted; --where cannot compare it");
            return new Argument(index, KindOf(parameter.Type));
        }
        if (name == "ret")
        {
            if (probe.ReturnRedacted)
                throw new FormatException($"the return value of the probe '{probe.Id}' is redacted; --where cannot compare it");
            return new ReturnValue(probe.ReturnType is null ? WhereValueKind.Null : KindOf(probe.ReturnType));
        }
        if (name == "elapsed")
            return new Elapsed();
        throw new FormatException($"the probe '{probe.Id}' has no argument '{name}' (it has {Describe(probe)}; 'ret' and 'elapsed' are always there)");
    }

    private static string Describe(ProbeDescriptor probe)
    {
        if (probe.Parameters.Count == 0)
            return "no arguments";
        var names = new List<string>();
        foreach (ProbeParameter p in probe.Parameters)
            names.Add(p.Name);
        return string.Join(", ", names);
    }

    private static WhereValueKind KindOf(string type) => type.TrimEnd('?') switch
    {
        "int" or "long" or "short" or "byte" or "sbyte" or "uint" or "ulong" or "ushort" or "nint" or "nuint"
            or "float" or "double" or "decimal" or "System.TimeSpan" => WhereValueKind.Number,
        "string" or "char" => WhereValueKind.String,
        "bool" => WhereValueKind.Bool,
        _ => WhereValueKind.Any,
    };

    private sealed class Argument(int index, WhereValueKind kind) : WhereEvaluator
    {
        public override WhereValueKind Kind => kind;

        public override WhereValue Evaluate(in ProbeHit hit) => FromObject(hit.GetArgument(index));
    }

    private sealed class ReturnValue(WhereValueKind kind) : WhereEvaluator
    {
        public override WhereValueKind Kind => kind;

        public override WhereValue Evaluate(in ProbeHit hit) => hit.HasReturnValue ? FromObject(hit.ReturnValue) : WhereValue.Null;
    }

    private sealed class Elapsed : WhereEvaluator
    {
        public override WhereValueKind Kind => WhereValueKind.Number;

        public override WhereValue Evaluate(in ProbeHit hit) => WhereValue.Of(hit.ElapsedNanoseconds);
    }

    /// <summary>
    /// A value as the language sees it, read without calling any of the app's code: every integer
    /// primitive as an exact integer (a ulong above long.MaxValue as a double), floating values as
    /// doubles, whatever the declared type (an object or T parameter holding a number compares as
    /// a number); an enum by its name (the runtime's formatting, which no app can override); any
    /// other type as <see cref="WhereValue.Opaque"/>, never through its ToString or Equals.
    /// </summary>
    internal static WhereValue FromObject(object? value) => value switch
    {
        null => WhereValue.Null,
        bool b => WhereValue.Of(b),
        string s => WhereValue.Of(s),
        int i => WhereValue.Of(i),
        long l => WhereValue.Of(l),
        short s16 => WhereValue.Of(s16),
        sbyte s8 => WhereValue.Of(s8),
        byte u8 => WhereValue.Of(u8),
        ushort u16 => WhereValue.Of(u16),
        uint u32 => WhereValue.Of(u32),
        ulong u64 => u64 <= long.MaxValue ? WhereValue.Of((long)u64) : WhereValue.Of((double)u64),
        nint n => WhereValue.Of((long)n),
        nuint un => (ulong)un <= long.MaxValue ? WhereValue.Of((long)un) : WhereValue.Of((double)un),
        double d => WhereValue.Of(d),
        float f => WhereValue.Of((double)f),
        decimal m => WhereValue.Of((double)m),
        TimeSpan t => WhereValue.Of(t.Ticks * 100),
        char c => WhereValue.Of(c.ToString()),
        Enum e => WhereValue.Of(e.ToString()),
        _ => WhereValue.Opaque,
    };
}

internal sealed class WhereNot(WhereNode operand) : WhereNode
{
    public override void CollectNames(HashSet<string> names) => operand.CollectNames(names);

    public override WhereEvaluator Bind(ProbeDescriptor probe)
    {
        WhereEvaluator inner = operand.Bind(probe);
        if (!inner.IsCondition)
            throw new FormatException("'!' needs a condition or a bool argument");
        return new Eval(inner);
    }

    private sealed class Eval(WhereEvaluator inner) : WhereEvaluator
    {
        public override WhereValueKind Kind => WhereValueKind.Bool;

        public override WhereValue Evaluate(in ProbeHit hit) => WhereValue.Of(!inner.Evaluate(in hit).IsTrue);
    }
}

internal sealed class WhereLogical(bool and, WhereNode left, WhereNode right) : WhereNode
{
    public override void CollectNames(HashSet<string> names)
    {
        left.CollectNames(names);
        right.CollectNames(names);
    }

    public override WhereEvaluator Bind(ProbeDescriptor probe)
    {
        WhereEvaluator l = left.Bind(probe), r = right.Bind(probe);
        if (!l.IsCondition || !r.IsCondition)
            throw new FormatException($"'{(and ? "&&" : "||")}' needs conditions on both sides");
        return new Eval(and, l, r);
    }

    private sealed class Eval(bool and, WhereEvaluator left, WhereEvaluator right) : WhereEvaluator
    {
        public override WhereValueKind Kind => WhereValueKind.Bool;

        public override WhereValue Evaluate(in ProbeHit hit) => and
            ? WhereValue.Of(left.Evaluate(in hit).IsTrue && right.Evaluate(in hit).IsTrue)
            : WhereValue.Of(left.Evaluate(in hit).IsTrue || right.Evaluate(in hit).IsTrue);
    }
}

internal sealed class WhereComparison(WhereOperator op, WhereNode left, WhereNode right) : WhereNode
{
    public override void CollectNames(HashSet<string> names)
    {
        left.CollectNames(names);
        right.CollectNames(names);
    }

    public override WhereEvaluator Bind(ProbeDescriptor probe)
    {
        WhereEvaluator l = left.Bind(probe), r = right.Bind(probe);
        WhereValueKind lk = l.Kind, rk = r.Kind;
        bool compatible = lk == WhereValueKind.Any || rk == WhereValueKind.Any || lk == rk || lk == WhereValueKind.Null || rk == WhereValueKind.Null;
        if (!compatible)
            throw new FormatException($"type mismatch in the probe '{probe.Id}': cannot compare {Describe(lk)} with {Describe(rk)} using '{op.Text()}'");
        if (op.Orders() && (lk is WhereValueKind.Bool or WhereValueKind.Null || rk is WhereValueKind.Bool or WhereValueKind.Null))
            throw new FormatException($"'{op.Text()}' orders numbers and strings, not {Describe(lk is WhereValueKind.Bool or WhereValueKind.Null ? lk : rk)}");
        return new Eval(op, l, r);
    }

    private static string Describe(WhereValueKind kind) => kind switch
    {
        WhereValueKind.Number => "a number",
        WhereValueKind.String => "a string",
        WhereValueKind.Bool => "a bool",
        WhereValueKind.Null => "null",
        _ => "a value",
    };

    private sealed class Eval(WhereOperator op, WhereEvaluator left, WhereEvaluator right) : WhereEvaluator
    {
        public override WhereValueKind Kind => WhereValueKind.Bool;

        public override WhereValue Evaluate(in ProbeHit hit) => WhereValue.Of(op.Holds(Compare(left.Evaluate(in hit), right.Evaluate(in hit))));

        /// <summary>
        /// Null when the values are of kinds that do not compare (then only != holds). An opaque
        /// value equals only itself being null, which it never is: it differs from every literal.
        /// </summary>
        private static int? Compare(WhereValue l, WhereValue r)
        {
            if (l.Kind == WhereValueKind.Null || r.Kind == WhereValueKind.Null)
                return l.Kind == r.Kind ? 0 : null;
            if (l.Kind != r.Kind || l.Kind == WhereValueKind.Opaque)
                return null;
            return l.Kind switch
            {
                WhereValueKind.Number when l.IsInteger && r.IsInteger => l.Integer.CompareTo(r.Integer),
                WhereValueKind.Number when double.IsNaN(l.Number) || double.IsNaN(r.Number) => null,  // NaN orders with nothing
                WhereValueKind.Number => l.Number.CompareTo(r.Number),
                WhereValueKind.String => string.CompareOrdinal(l.Text, r.Text),
                WhereValueKind.Bool => l.Bool == r.Bool ? 0 : null,
                _ => null,
            };
        }
    }
}
