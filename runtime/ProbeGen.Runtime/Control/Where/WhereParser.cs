using System;
using System.Globalization;
using System.Text;

namespace ProbeGen.Control;

/// <summary>Recursive descent with precedence climbing; every recursion is bounded by <see cref="WhereFilter.MaxDepth"/>.</summary>
internal sealed class WhereParser(string text)
{
    /// <summary>The most operators an expression may hold: chains like a || b || c build a tree as deep as they are long.</summary>
    private const int MaxOperators = 64;

    private int _position;
    private int _operators;

    public WhereNode ParseExpression(int depth) => ParseOr(depth);

    public void ExpectEnd()
    {
        SkipSpace();
        if (_position < text.Length)
            throw Error($"unexpected '{Snippet()}'");
    }

    private WhereNode ParseOr(int depth)
    {
        WhereNode left = ParseAnd(Deeper(depth));
        while (Accept("||"))
            left = new WhereLogical(false, left, ParseAnd(Deeper(depth)));
        return left;
    }

    private WhereNode ParseAnd(int depth)
    {
        WhereNode left = ParseUnary(Deeper(depth));
        while (Accept("&&"))
            left = new WhereLogical(true, left, ParseUnary(Deeper(depth)));
        return left;
    }

    private WhereNode ParseUnary(int depth)
    {
        SkipSpace();
        if (Peek() == '!' && Peek(1) != '=')
        {
            _position++;
            return new WhereNot(ParseUnary(Deeper(depth)));
        }
        WhereNode left = ParsePrimary(Deeper(depth));
        SkipSpace();
        foreach (var (spelling, op) in WhereOperators.Spellings)
        {
            if (Accept(spelling))
                return new WhereComparison(op, left, ParsePrimary(Deeper(depth)));
        }
        return left;
    }

    private WhereNode ParsePrimary(int depth)
    {
        SkipSpace();
        if (_position >= text.Length)
            throw Error("the expression ends where a value was expected");
        char c = text[_position];
        if (c == '(')
        {
            _position++;
            WhereNode inner = ParseOr(Deeper(depth));
            if (!Accept(")"))
                throw Error("a '(' is never closed");
            return inner;
        }
        if (c == '"')
            return new WhereLiteral(WhereValue.Of(ReadString()));
        if (char.IsAsciiDigit(c) || (c == '-' && _position + 1 < text.Length && char.IsAsciiDigit(text[_position + 1])))
            return new WhereLiteral(ReadNumber());
        if (char.IsAsciiLetter(c) || c == '_')
        {
            int start = _position;
            while (_position < text.Length && (char.IsAsciiLetterOrDigit(text[_position]) || text[_position] == '_') && _position - start < WhereFilter.MaxLiteralLength)
                _position++;
            string word = text[start.._position];
            return word switch
            {
                "true" => new WhereLiteral(WhereValue.Of(true)),
                "false" => new WhereLiteral(WhereValue.Of(false)),
                "null" => new WhereLiteral(WhereValue.Null),
                _ => new WhereName(word),
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
            if (value.Length > WhereFilter.MaxLiteralLength)
                throw Error($"a string literal is longer than {WhereFilter.MaxLiteralLength} characters");
        }
        _position = start;
        throw Error("a string is never closed");
    }

    private WhereValue ReadNumber()
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
            return WhereValue.Of(l);
        if (double.TryParse(literal, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d))
            return WhereValue.Of(d);
        _position = start;
        throw Error($"'{literal}' is not a number this language can hold");
    }

    private int Deeper(int depth)
    {
        if (depth + 1 > WhereFilter.MaxDepth * 4)
            throw Error($"the expression nests deeper than {WhereFilter.MaxDepth} levels");
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
