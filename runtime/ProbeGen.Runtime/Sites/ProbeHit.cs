using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ProbeGen;

/// <summary>
/// An untyped view of one probe hit, for handlers attached by pattern. It lives on the probed
/// thread's stack for the duration of the handler call and costs no allocation; arguments are
/// boxed only when read through <see cref="GetArgument(int)"/>.
/// </summary>
public readonly ref struct ProbeHit
{
    private readonly ref byte _args;
    private readonly ArgsAccessor _argsAccessor;
    private readonly ref byte _result;
    private readonly ValueAccessor? _resultAccessor;
    private readonly long _elapsedTicks;

    internal ProbeHit(ProbeDescriptor probe, ProbePoint point, ref byte args, ArgsAccessor argsAccessor, object? state,
        long timestamp, ref byte result, ValueAccessor? resultAccessor, long elapsedTicks, Exception? exception)
    {
        Probe = probe;
        Point = point;
        _args = ref args;
        _argsAccessor = argsAccessor;
        State = state;
        Timestamp = timestamp;
        _result = ref result;
        _resultAccessor = resultAccessor;
        _elapsedTicks = elapsedTicks;
        Exception = exception;
    }

    /// <summary>The probe that was hit.</summary>
    public ProbeDescriptor Probe { get; }

    /// <summary>Fire, entry or return.</summary>
    public ProbePoint Point { get; }

    /// <summary>When the hit happened, in <see cref="Stopwatch.GetTimestamp"/> ticks.</summary>
    public long Timestamp { get; }

    /// <summary>The managed id of the thread that hit the probe (the handler runs on it).</summary>
    public int ThreadId => Environment.CurrentManagedThreadId;

    /// <summary>What the consumer returned from <see cref="ProbeConsumer.OnAttach"/> for this probe.</summary>
    public object? State { get; }

    /// <summary>For a return hit, the time from entry to return; zero when the entry was not observed.</summary>
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(0, _elapsedTicks);

    /// <summary>For a return hit, the time from entry to return in nanoseconds; zero when the entry was not observed.</summary>
    public long ElapsedNanoseconds => (long)((double)_elapsedTicks * 1_000_000_000 / Stopwatch.Frequency);

    /// <summary>For a return hit, the exception the method threw (it is rethrown unchanged), else null.</summary>
    public Exception? Exception { get; }

    /// <summary>The number of arguments.</summary>
    public int ArgumentCount => _argsAccessor.Count(ref _args);

    /// <summary>Argument <paramref name="index"/>, boxed.</summary>
    public object? GetArgument(int index) => _argsAccessor.GetBoxed(ref _args, index);

    /// <summary>The argument whose parameter is called <paramref name="name"/>, boxed.</summary>
    /// <exception cref="ArgumentException">The probe has no such parameter.</exception>
    public object? GetArgument(string name) => GetArgument(IndexOf(name));

    /// <summary>Argument <paramref name="index"/> as <typeparamref name="T"/>, unboxed when the type matches exactly.</summary>
    public bool TryGetArgument<T>(int index, out T value) => _argsAccessor.TryGet(ref _args, index, out value);

    /// <summary>Argument <paramref name="index"/> as a 64-bit integer, if it is numeric.</summary>
    public bool TryGetArgumentAsInt64(int index, out long value) => _argsAccessor.TryGetInt64(ref _args, index, out value);

    /// <summary>True for a return hit of a method that returns a value and did not throw.</summary>
    public bool HasReturnValue => _resultAccessor is not null && Exception is null;

    /// <summary>The return value, boxed; null when there is none.</summary>
    public object? ReturnValue => HasReturnValue ? _resultAccessor!.GetBoxed(ref _result) : null;

    /// <summary>The return value as <typeparamref name="T"/>, unboxed when the type matches exactly.</summary>
    public bool TryGetReturnValue<T>(out T value)
    {
        if (HasReturnValue)
            return _resultAccessor!.TryGet(ref _result, out value);
        value = default!;
        return false;
    }

    /// <summary>The return value as a 64-bit integer, if it is numeric.</summary>
    public bool TryGetReturnValueAsInt64(out long value)
    {
        if (HasReturnValue)
            return _resultAccessor!.TryGetInt64(ref _result, out value);
        value = 0;
        return false;
    }

    /// <summary>
    /// One readable line: <c>orders:placed fire (orderId=7, amount=19.99, customer=ada)</c>, and for
    /// a return <c>-&gt; value in 1.25 ms</c> or <c>threw ExceptionType</c>. Redacted values read
    /// <see cref="ProbeRedaction.Placeholder"/>. Allocates; for display.
    /// </summary>
    public override string ToString()
    {
        var text = new System.Text.StringBuilder();
        text.Append(Probe.Id).Append(' ').Append(Point switch
        {
            ProbePoint.Fire => "fire",
            ProbePoint.Entry => "entry",
            _ => "return",
        }).Append(" (");
        int count = ArgumentCount;
        for (int i = 0; i < count; i++)
        {
            if (i > 0)
                text.Append(", ");
            string name = i < Probe.Parameters.Count ? Probe.Parameters[i].Name : "arg" + i;
            text.Append(name).Append('=').Append(Probe.IsArgumentRedacted(i) ? ProbeRedaction.Placeholder
                : System.Convert.ToString(GetArgument(i), System.Globalization.CultureInfo.InvariantCulture) ?? "null");
        }
        text.Append(')');
        if (Point == ProbePoint.Return)
        {
            if (Exception is not null)
                text.Append(" threw ").Append(Exception.GetType().Name);
            else
                text.Append(!HasReturnValue ? " returned"
                        : " -> " + (Probe.ReturnRedacted ? ProbeRedaction.Placeholder : System.Convert.ToString(ReturnValue, System.Globalization.CultureInfo.InvariantCulture)))
                    .Append(System.FormattableString.Invariant($" in {Elapsed.TotalMilliseconds:F2} ms"));
        }
        return text.ToString();
    }

    private int IndexOf(string name)
    {
        int index = Probe.IndexOfParameter(name);
        if (index < 0)
            throw new ArgumentException($"The probe '{Probe.Id}' has no parameter named '{name}'.", nameof(name));
        return index;
    }
}

/// <summary>Reads a probe's args struct through a <c>ref byte</c>, so <see cref="ProbeHit"/> needs no generic parameter.</summary>
internal abstract class ArgsAccessor
{
    public abstract int Count(ref byte args);
    public abstract object? GetBoxed(ref byte args, int index);
    public abstract bool TryGet<T>(ref byte args, int index, out T value);
    public abstract bool TryGetInt64(ref byte args, int index, out long value);
}

internal sealed class ArgsAccessor<TArgs> : ArgsAccessor where TArgs : struct, IProbeArgs
{
    public static readonly ArgsAccessor<TArgs> Instance = new();

    public override int Count(ref byte args) => Unsafe.As<byte, TArgs>(ref args).Count;
    public override object? GetBoxed(ref byte args, int index) => Unsafe.As<byte, TArgs>(ref args).GetBoxed(index);
    public override bool TryGet<T>(ref byte args, int index, out T value) => Unsafe.As<byte, TArgs>(ref args).TryGet(index, out value);
    public override bool TryGetInt64(ref byte args, int index, out long value) => Unsafe.As<byte, TArgs>(ref args).TryGetInt64(index, out value);
}

/// <summary>Reads one value of a type known only to the site through a <c>ref byte</c>.</summary>
internal abstract class ValueAccessor
{
    public abstract object? GetBoxed(ref byte value);
    public abstract bool TryGet<T>(ref byte value, out T result);
    public abstract bool TryGetInt64(ref byte value, out long result);
}

internal sealed class ValueAccessor<TValue> : ValueAccessor
{
    /// <summary>The accessor, or null for <see cref="NoResult"/> (a void method has no return value).</summary>
    public static readonly ValueAccessor<TValue>? Instance = typeof(TValue) == typeof(NoResult) ? null : new();

    public override object? GetBoxed(ref byte value) => Unsafe.As<byte, TValue>(ref value);
    public override bool TryGet<T>(ref byte value, out T result) => ProbeValues.TryConvert(in Unsafe.As<byte, TValue>(ref value), out result);
    public override bool TryGetInt64(ref byte value, out long result) => ProbeValues.TryToInt64(in Unsafe.As<byte, TValue>(ref value), out result);
}

/// <summary>The result type of a method probe on a <c>void</c> method (or a non-generic Task).</summary>
public readonly struct NoResult
{
}

/// <summary>The outcome of one call of a probed method, for typed return handlers.</summary>
/// <typeparam name="TResult">The method's result type; <see cref="NoResult"/> for <c>void</c>.</typeparam>
public readonly ref struct ProbeReturn<TResult>
{
    private readonly ref readonly TResult _value;

    internal ProbeReturn(ref readonly TResult value, long elapsedTicks, Exception? exception)
    {
        _value = ref value;
        ElapsedTicks = elapsedTicks;
        Exception = exception;
    }

    /// <summary>The returned value; default when the method threw.</summary>
    public ref readonly TResult Value => ref _value;

    /// <summary>The time from entry to return, in <see cref="Stopwatch"/> ticks; zero when the entry was not observed.</summary>
    public long ElapsedTicks { get; }

    /// <summary>The exception the method threw (rethrown unchanged after the hit), else null.</summary>
    public Exception? Exception { get; }
}
