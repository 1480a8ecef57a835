namespace ProbeGen;

/// <summary>
/// The arguments of one probe hit, held in a struct so the typed path never boxes them.
/// Implemented by the <c>ProbeArgs</c> family; generated code creates them.
/// </summary>
public interface IProbeArgs
{
    /// <summary>The number of arguments.</summary>
    int Count { get; }

    /// <summary>Argument <paramref name="index"/>, boxed if it is a value type.</summary>
    object? GetBoxed(int index);

    /// <summary>Argument <paramref name="index"/> as <typeparamref name="T"/>, without boxing when the types match exactly.</summary>
    bool TryGet<T>(int index, out T value);

    /// <summary>Argument <paramref name="index"/> as a 64-bit integer, if it is a number, a <c>bool</c>, a <c>char</c> or an enum. Floating values are truncated.</summary>
    bool TryGetInt64(int index, out long value);
}
