using System;
using System.Runtime.CompilerServices;

namespace ProbeGen;

/// <summary>Conversions of probe values without boxing, for the untyped and aggregating paths.</summary>
internal static class ProbeValues
{
    /// <summary>Reads <paramref name="source"/> as <typeparamref name="T"/>: a reinterpretation when the types match, else a boxed cast.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryConvert<TSource, T>(in TSource source, out T value)
    {
        if (typeof(TSource) == typeof(T))
        {
            value = Unsafe.As<TSource, T>(ref Unsafe.AsRef(in source));
            return true;
        }
        if (source is T cast)
        {
            value = cast;
            return true;
        }
        value = default!;
        return false;
    }

    /// <summary>
    /// Converts a value to a site's declared type: a reinterpretation when the types match (the
    /// JIT folds the check away), else a boxing cast, as for a generic method's <c>T</c> that the
    /// site records as <c>object</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TTarget Cast<TSource, TTarget>(TSource value)
    {
        if (typeof(TSource) == typeof(TTarget))
            return Unsafe.As<TSource, TTarget>(ref value);
        return (TTarget)(object?)value!;
    }

    /// <summary>Reads a numeric, <c>bool</c>, <c>char</c> or enum value as a 64-bit integer.</summary>
    public static bool TryToInt64<TSource>(in TSource source, out long value)
    {
        ref TSource s = ref Unsafe.AsRef(in source);
        if (typeof(TSource) == typeof(int)) { value = Unsafe.As<TSource, int>(ref s); return true; }
        if (typeof(TSource) == typeof(long)) { value = Unsafe.As<TSource, long>(ref s); return true; }
        if (typeof(TSource) == typeof(uint)) { value = Unsafe.As<TSource, uint>(ref s); return true; }
        if (typeof(TSource) == typeof(ulong)) { value = unchecked((long)Unsafe.As<TSource, ulong>(ref s)); return true; }
        if (typeof(TSource) == typeof(short)) { value = Unsafe.As<TSource, short>(ref s); return true; }
        if (typeof(TSource) == typeof(ushort)) { value = Unsafe.As<TSource, ushort>(ref s); return true; }
        if (typeof(TSource) == typeof(byte)) { value = Unsafe.As<TSource, byte>(ref s); return true; }
        if (typeof(TSource) == typeof(sbyte)) { value = Unsafe.As<TSource, sbyte>(ref s); return true; }
        if (typeof(TSource) == typeof(char)) { value = Unsafe.As<TSource, char>(ref s); return true; }
        if (typeof(TSource) == typeof(bool)) { value = Unsafe.As<TSource, bool>(ref s) ? 1 : 0; return true; }
        if (typeof(TSource) == typeof(nint)) { value = Unsafe.As<TSource, nint>(ref s); return true; }
        if (typeof(TSource) == typeof(nuint)) { value = unchecked((long)Unsafe.As<TSource, nuint>(ref s)); return true; }
        if (typeof(TSource) == typeof(double)) { value = (long)Unsafe.As<TSource, double>(ref s); return true; }
        if (typeof(TSource) == typeof(float)) { value = (long)Unsafe.As<TSource, float>(ref s); return true; }
        if (typeof(TSource) == typeof(decimal)) { value = (long)Unsafe.As<TSource, decimal>(ref s); return true; }
        if (typeof(TSource) == typeof(TimeSpan)) { value = Unsafe.As<TSource, TimeSpan>(ref s).Ticks; return true; }
        return TryToInt64Boxed(source, out value);
    }

    private static bool TryToInt64Boxed(object? boxed, out long value)
    {
        switch (boxed)
        {
            case Enum e:
                value = Convert.ToInt64(e, System.Globalization.CultureInfo.InvariantCulture);
                return true;
            case IConvertible c when boxed is not string:
                try
                {
                    value = c.ToInt64(System.Globalization.CultureInfo.InvariantCulture);
                    return true;
                }
                catch (Exception ex) when (ex is FormatException or InvalidCastException or OverflowException)
                {
                    break;
                }
        }
        value = 0;
        return false;
    }
}
