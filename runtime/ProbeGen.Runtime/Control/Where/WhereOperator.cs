namespace ProbeGen.Control;

/// <summary>The comparison operators of the <c>--where</c> language.</summary>
internal enum WhereOperator
{
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// <summary>How each <see cref="WhereOperator"/> is written and what it means.</summary>
internal static class WhereOperators
{
    /// <summary>Every operator with its spelling, longest spellings first so that <c>&lt;=</c> is not read as <c>&lt;</c>.</summary>
    public static readonly (string Text, WhereOperator Operator)[] Spellings =
    [
        ("==", WhereOperator.Equal), ("!=", WhereOperator.NotEqual), ("<=", WhereOperator.LessOrEqual),
        (">=", WhereOperator.GreaterOrEqual), ("<", WhereOperator.Less), (">", WhereOperator.Greater),
    ];

    public static string Text(this WhereOperator op) => op switch
    {
        WhereOperator.Equal => "==",
        WhereOperator.NotEqual => "!=",
        WhereOperator.Less => "<",
        WhereOperator.LessOrEqual => "<=",
        WhereOperator.Greater => ">",
        _ => ">=",
    };

    public static bool Orders(this WhereOperator op) => op is not (WhereOperator.Equal or WhereOperator.NotEqual);

    /// <summary>The operator's answer given how its operands compare; null when they do not (only <c>!=</c> holds then).</summary>
    public static bool Holds(this WhereOperator op, int? order) => op switch
    {
        WhereOperator.Equal => order == 0,
        WhereOperator.NotEqual => order != 0,
        WhereOperator.Less => order < 0,
        WhereOperator.LessOrEqual => order <= 0,
        WhereOperator.Greater => order > 0,
        _ => order >= 0,
    };
}
