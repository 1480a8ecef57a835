namespace ProbeGen.Control;

/// <summary>What a value is to the <c>--where</c> language.</summary>
internal enum WhereValueKind
{
    Null,
    Bool,
    Number,
    String,

    /// <summary>Declared as object, a type parameter or an interface: its kind is known only per hit.</summary>
    Any,

    /// <summary>
    /// A value of any other type. Comparing it would mean calling the app's code (its Equals or
    /// ToString), which the language never does, so it compares only with <c>null</c>.
    /// </summary>
    Opaque,
}

/// <summary>A value during evaluation: numbers as double, plus the exact long for integers.</summary>
internal readonly struct WhereValue
{
    public readonly WhereValueKind Kind;
    public readonly double Number;
    public readonly long Integer;
    public readonly bool IsInteger;
    public readonly string? Text;
    public readonly bool Bool;

    private WhereValue(WhereValueKind kind, double number, long integer, bool isInteger, string? text, bool b)
    {
        Kind = kind;
        Number = number;
        Integer = integer;
        IsInteger = isInteger;
        Text = text;
        Bool = b;
    }

    public static readonly WhereValue Null = new(WhereValueKind.Null, 0, 0, false, null, false);

    /// <summary>A non-null value of a type the language does not look into.</summary>
    public static readonly WhereValue Opaque = new(WhereValueKind.Opaque, 0, 0, false, null, false);

    public static WhereValue Of(bool b) => new(WhereValueKind.Bool, 0, 0, false, null, b);

    public static WhereValue Of(long l) => new(WhereValueKind.Number, l, l, true, null, false);

    public static WhereValue Of(double d) => new(WhereValueKind.Number, d, 0, false, null, false);

    public static WhereValue Of(string? s) => s is null ? Null : new(WhereValueKind.String, 0, 0, false, s, false);

    public bool IsTrue => Kind == WhereValueKind.Bool && Bool;
}
