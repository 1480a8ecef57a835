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
/// member access and no types, the parser bounds input length, nesting and literal sizes, and
/// evaluation is a walk over a tree whose size the parser already bounded. No loop, no recursion
/// that the input can make unbounded. It is parsed once per enable and bound once per probe.
/// </remarks>
public sealed class WhereFilter
{
    /// <summary>The longest expression accepted, in characters.</summary>
    public const int MaxLength = 4096;

    /// <summary>The deepest nesting of parentheses and operators accepted.</summary>
    public const int MaxDepth = 32;

    private const int MaxLiteralLength = 1024;

    private readonly Node _root;

    private WhereFilter(string text, Node root)
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
            var parser = new Parser(text);
            Node root = parser.ParseExpression(0);
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
            Evaluator evaluator = _root.Bind(probe);
            if (evaluator.Kind is not (ValueKind.Bool or ValueKind.Any))
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

    internal enum ValueKind { Null, Bool, Number, String, Any }

    /// <summary>A value during evaluation: numbers as double, plus the exact long for integers.</summary>
    internal readonly struct Value
    {
        public readonly ValueKind Kind;
        public readonly double Number;
        public readonly long Integer;
        public readonly bool IsInteger;
        public readonly string? Text;
        public readonly bool Bool;

        private Value(ValueKind kind, double number, long integer, bool isInteger, string? text, bool b)
        {
            Kind = kind;
            Number = number;
            Integer = integer;
            IsInteger = isInteger;
            Text = text;
            Bool = b;
        }

        public static readonly Value Null = new(ValueKind.Null, 0, 0, false, null, false);

        public static Value Of(bool b) => new(ValueKind.Bool, 0, 0, false, null, b);

        public static Value Of(long l) => new(ValueKind.Number, l, l, true, null, false);

        public static Value Of(double d) => new(ValueKind.Number, d, 0, false, null, false);

        public static Value Of(string? s) => s is null ? Null : new(ValueKind.String, 0, 0, false, s, false);

        public bool IsTrue => Kind == ValueKind.Bool && Bool;
    }

    /// <summary>A node bound to one probe, evaluated per hit.</summary>
    internal abstract class Evaluator
    {
        public abstract ValueKind Kind { get; }

        public abstract Value Evaluate(in ProbeHit hit);
    }

    private abstract class Node
    {
        public abstract Evaluator Bind(ProbeDescriptor probe);

        public virtual void CollectNames(HashSet<string> names)
        {
        }
    }

    private sealed class Literal(Value value) : Node
    {
        public override Evaluator Bind(ProbeDescriptor probe) => new Constant(value);

        private sealed class Constant(Value value) : Evaluator
        {
            public override ValueKind Kind => value.Kind;

            public override Value Evaluate(in ProbeHit hit) => value;
        }
    }

    private sealed class Name(string name) : Node
    {
        public override void CollectNames(HashSet<string> names) => names.Add(name);

        public override Evaluator Bind(ProbeDescriptor probe)
        {
            int index = probe.IndexOfParameter(name);
            if (index >= 0)
                return new Argument(index, KindOf(probe.Parameters[index].Type));
            if (name == "ret")
                return new ReturnValue(probe.ReturnType is null ? ValueKind.Null : KindOf(probe.ReturnType));
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

        private static ValueKind KindOf(string type) => type.TrimEnd('?') switch
        {
            "int" or "long" or "short" or "byte" or "sbyte" or "uint" or "ulong" or "ushort" or "nint" or "nuint"
                or "float" or "double" or "decimal" or "System.TimeSpan" => ValueKind.Number,
            "string" => ValueKind.String,
            "bool" => ValueKind.Bool,
            _ => ValueKind.Any,
        };

        private sealed class Argument(int index, ValueKind kind) : Evaluator
        {
            public override ValueKind Kind => kind;

            public override Value Evaluate(in ProbeHit hit) => FromObject(hit.GetArgument(index), kind, in hit, index);
        }

        private sealed class ReturnValue(ValueKind kind) : Evaluator
        {
            public override ValueKind Kind => kind;

            public override Value Evaluate(in ProbeHit hit) => hit.HasReturnValue ? FromObject(hit.ReturnValue, kind, in hit, -1) : Value.Null;
        }

        private sealed class Elapsed : Evaluator
        {
            public override ValueKind Kind => ValueKind.Number;

            public override Value Evaluate(in ProbeHit hit) => Value.Of(hit.ElapsedNanoseconds);
        }

        /// <summary>
        /// A value as the language sees it: every integer primitive as an exact integer (a ulong
        /// above long.MaxValue as a double), floating values as doubles, whatever the declared
        /// type (an object or T parameter holding a number compares as a number).
        /// </summary>
        private static Value FromObject(object? value, ValueKind kind, in ProbeHit hit, int index) => value switch
        {
            null => Value.Null,
            bool b => Value.Of(b),
            string s => Value.Of(s),
            int i => Value.Of(i),
            long l => Value.Of(l),
            short s16 => Value.Of(s16),
            sbyte s8 => Value.Of(s8),
            byte u8 => Value.Of(u8),
            ushort u16 => Value.Of(u16),
            uint u32 => Value.Of(u32),
            ulong u64 => u64 <= long.MaxValue ? Value.Of((long)u64) : Value.Of((double)u64),
            nint n => Value.Of((long)n),
            double d => Value.Of(d),
            float f => Value.Of((double)f),
            decimal m => Value.Of((double)m),
            char c => Value.Of(c.ToString()),
            Enum e => Value.Of(e.ToString()),
            _ => Value.Of(Convert.ToString(value, CultureInfo.InvariantCulture)),
        };
    }

    private sealed class Not(Node operand) : Node
    {
        public override void CollectNames(HashSet<string> names) => operand.CollectNames(names);

        public override Evaluator Bind(ProbeDescriptor probe)
        {
            Evaluator inner = operand.Bind(probe);
            if (inner.Kind is not (ValueKind.Bool or ValueKind.Any))
                throw new FormatException("'!' needs a condition or a bool argument");
            return new Eval(inner);
        }

        private sealed class Eval(Evaluator inner) : Evaluator
        {
            public override ValueKind Kind => ValueKind.Bool;

            public override Value Evaluate(in ProbeHit hit) => Value.Of(!inner.Evaluate(in hit).IsTrue);
        }
    }

    private sealed class Logical(bool and, Node left, Node right) : Node
    {
        public override void CollectNames(HashSet<string> names)
        {
            left.CollectNames(names);
            right.CollectNames(names);
        }

        public override Evaluator Bind(ProbeDescriptor probe)
        {
            Evaluator l = left.Bind(probe), r = right.Bind(probe);
            foreach (Evaluator side in new[] { l, r })
                if (side.Kind is not (ValueKind.Bool or ValueKind.Any))
                    throw new FormatException($"'{(and ? "&&" : "||")}' needs conditions on both sides");
            return new Eval(and, l, r);
        }

        private sealed class Eval(bool and, Evaluator left, Evaluator right) : Evaluator
        {
            public override ValueKind Kind => ValueKind.Bool;

            public override Value Evaluate(in ProbeHit hit) => and
                ? Value.Of(left.Evaluate(in hit).IsTrue && right.Evaluate(in hit).IsTrue)
                : Value.Of(left.Evaluate(in hit).IsTrue || right.Evaluate(in hit).IsTrue);
        }
    }

    private sealed class Comparison(string op, Node left, Node right) : Node
    {
        public override void CollectNames(HashSet<string> names)
        {
            left.CollectNames(names);
            right.CollectNames(names);
        }

        public override Evaluator Bind(ProbeDescriptor probe)
        {
            Evaluator l = left.Bind(probe), r = right.Bind(probe);
            bool ordering = op is "<" or "<=" or ">" or ">=";
            ValueKind lk = l.Kind, rk = r.Kind;
            bool compatible = lk == ValueKind.Any || rk == ValueKind.Any || lk == rk || lk == ValueKind.Null || rk == ValueKind.Null;
            if (!compatible)
                throw new FormatException($"type mismatch in the probe '{probe.Id}': cannot compare {Describe(lk)} with {Describe(rk)} using '{op}'");
            if (ordering && (lk is ValueKind.Bool or ValueKind.Null || rk is ValueKind.Bool or ValueKind.Null))
                throw new FormatException($"'{op}' orders numbers and strings, not {Describe(lk is ValueKind.Bool or ValueKind.Null ? lk : rk)}");
            return new Eval(op, l, r);
        }

        private static string Describe(ValueKind kind) => kind switch
        {
            ValueKind.Number => "a number",
            ValueKind.String => "a string",
            ValueKind.Bool => "a bool",
            ValueKind.Null => "null",
            _ => "a value",
        };

        private sealed class Eval(string op, Evaluator left, Evaluator right) : Evaluator
        {
            public override ValueKind Kind => ValueKind.Bool;

            public override Value Evaluate(in ProbeHit hit)
            {
                Value l = left.Evaluate(in hit), r = right.Evaluate(in hit);
                int? order = Compare(l, r);
                return Value.Of(op switch
                {
                    "==" => order == 0,
                    "!=" => order != 0,
                    "<" => order < 0,
                    "<=" => order <= 0,
                    ">" => order > 0,
                    _ => order >= 0,
                });
            }

            /// <summary>Null when the values are of kinds that do not compare (then only != holds).</summary>
            private static int? Compare(Value l, Value r)
            {
                if (l.Kind == ValueKind.Null || r.Kind == ValueKind.Null)
                    return l.Kind == r.Kind ? 0 : null;
                if (l.Kind != r.Kind)
                    return null;
                return l.Kind switch
                {
                    ValueKind.Number when l.IsInteger && r.IsInteger => l.Integer.CompareTo(r.Integer),
                    ValueKind.Number when double.IsNaN(l.Number) || double.IsNaN(r.Number) => null,  // NaN orders with nothing
                    ValueKind.Number => l.Number.CompareTo(r.Number),
                    ValueKind.String => string.CompareOrdinal(l.Text, r.Text),
                    ValueKind.Bool => l.Bool == r.Bool ? 0 : null,
                    _ => null,
                };
            }
        }
    }

    /// <summary>Recursive descent with precedence climbing; every recursion is bounded by <see cref="MaxDepth"/>.</summary>
    private sealed class Parser(string text)
    {
        /// <summary>The most operators an expression may hold: chains like a || b || c build a tree as deep as they are long.</summary>
        private const int MaxOperators = 64;

        private int _position;
        private int _operators;

        public Node ParseExpression(int depth) => ParseOr(depth);

        public void ExpectEnd()
        {
            SkipSpace();
            if (_position < text.Length)
                throw Error($"unexpected '{Snippet()}'");
        }

        private Node ParseOr(int depth)
        {
            Node left = ParseAnd(Deeper(depth));
            while (Accept("||"))
                left = new Logical(false, left, ParseAnd(Deeper(depth)));
            return left;
        }

        private Node ParseAnd(int depth)
        {
            Node left = ParseUnary(Deeper(depth));
            while (Accept("&&"))
                left = new Logical(true, left, ParseUnary(Deeper(depth)));
            return left;
        }

        private Node ParseUnary(int depth)
        {
            SkipSpace();
            if (Peek() == '!' && Peek(1) != '=')
            {
                _position++;
                return new Not(ParseUnary(Deeper(depth)));
            }
            Node left = ParsePrimary(Deeper(depth));
            SkipSpace();
            foreach (string op in new[] { "==", "!=", "<=", ">=", "<", ">" })
            {
                if (Accept(op))
                    return new Comparison(op, left, ParsePrimary(Deeper(depth)));
            }
            return left;
        }

        private Node ParsePrimary(int depth)
        {
            SkipSpace();
            if (_position >= text.Length)
                throw Error("the expression ends where a value was expected");
            char c = text[_position];
            if (c == '(')
            {
                _position++;
                Node inner = ParseOr(Deeper(depth));
                if (!Accept(")"))
                    throw Error("a '(' is never closed");
                return inner;
            }
            if (c == '"')
                return new Literal(Value.Of(ReadString()));
            if (char.IsAsciiDigit(c) || (c == '-' && _position + 1 < text.Length && char.IsAsciiDigit(text[_position + 1])))
                return new Literal(ReadNumber());
            if (char.IsAsciiLetter(c) || c == '_')
            {
                int start = _position;
                while (_position < text.Length && (char.IsAsciiLetterOrDigit(text[_position]) || text[_position] == '_') && _position - start < MaxLiteralLength)
                    _position++;
                string word = text[start.._position];
                return word switch
                {
                    "true" => new Literal(Value.Of(true)),
                    "false" => new Literal(Value.Of(false)),
                    "null" => new Literal(Value.Null),
                    _ => new Name(word),
                };
            }
            throw Error($"unexpected '{Snippet()}': expected a name, a number, a string, true, false, null or '('");
        }

        private string ReadString()
        {
            int start = _position++;
            var value = new StringBuilder();
            while (_position < text.Length)
            {
                char c = text[_position++];
                if (c == '"')
                    return value.ToString();
                if (c == '\\' && _position < text.Length)
                {
                    char escaped = text[_position++];
                    value.Append(escaped switch
                    {
                        'n' => '\n',
                        't' => '\t',
                        '"' => '"',
                        '\\' => '\\',
                        _ => throw Error($"unknown escape '\\{escaped}' in a string"),
                    });
                }
                else
                {
                    value.Append(c);
                }
                if (value.Length > MaxLiteralLength)
                    throw Error($"a string literal is longer than {MaxLiteralLength} characters");
            }
            _position = start;
            throw Error("a string is never closed");
        }

        private Value ReadNumber()
        {
            int start = _position;
            if (text[_position] == '-')
                _position++;
            while (_position < text.Length && (char.IsAsciiDigit(text[_position]) || text[_position] is '.' or 'e' or 'E' or '_'
                       || (text[_position] is '+' or '-' && text[_position - 1] is 'e' or 'E')))
                _position++;
            string literal = text[start.._position].Replace("_", "");
            if (literal.Length > 64)
                throw Error("a number literal is too long");
            if (long.TryParse(literal, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
                return Value.Of(l);
            if (double.TryParse(literal, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d))
                return Value.Of(d);
            _position = start;
            throw Error($"'{literal}' is not a number this language can hold");
        }

        private int Deeper(int depth)
        {
            if (depth + 1 > MaxDepth * 4)
                throw Error($"the expression nests deeper than {MaxDepth} levels");
            return depth + 1;
        }

        private bool Accept(string token)
        {
            SkipSpace();
            if (string.CompareOrdinal(text, _position, token, 0, token.Length) != 0)
                return false;
            _position += token.Length;
            if (token is not ")" && ++_operators > MaxOperators)
                throw Error($"the expression has more than {MaxOperators} operators");
            return true;
        }

        private char Peek(int ahead = 0) => _position + ahead < text.Length ? text[_position + ahead] : '\0';

        private void SkipSpace()
        {
            while (_position < text.Length && char.IsWhiteSpace(text[_position]))
                _position++;
        }

        private string Snippet() => text.Substring(_position, Math.Min(12, text.Length - _position));

        private FormatException Error(string message) => new($"--where: {message} (at column {_position + 1})");
    }
}

/// <summary>A bound <see cref="WhereFilter"/>: true when the hit passes.</summary>
public delegate bool HitPredicate(in ProbeHit hit);
