using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;
using ProbeGen.Concurrency;
using ProbeGen.Internal;

namespace ProbeGen;

/// <summary>Handles the return of a probed call on the typed path.</summary>
/// <typeparam name="TArgs">The method's arguments (out and ref values as they are at return).</typeparam>
/// <typeparam name="TResult">The method's result; <see cref="NoResult"/> for <c>void</c>.</typeparam>
public delegate void ProbeReturnAction<TArgs, TResult>(in TArgs args, in ProbeReturn<TResult> result) where TArgs : struct, IProbeArgs;

/// <summary>
/// The site of a method probe. Generated interceptors call <see cref="Entry"/> before the call and
/// <see cref="Return"/> or <see cref="Throw"/> after it (for an awaitable, when it completes).
/// </summary>
/// <typeparam name="TArgs">The method's arguments.</typeparam>
/// <typeparam name="TResult">The method's result (the awaited result for an awaitable); <see cref="NoResult"/> for none.</typeparam>
public sealed class MethodProbeSite<TArgs, TResult> : ProbeSite where TArgs : struct, IProbeArgs
{
    /// <summary>
    /// The attached consumers, or null when none. Replaced whole under the writer lock of
    /// <see cref="Probes"/>; read locklessly by <see cref="IsEnabled"/> and the hit methods.
    /// </summary>
    private CallBinding<TArgs, TResult>[]? _bindings;

    /// <summary>Creates a site for a method probe.</summary>
    /// <param name="descriptor">The probe; its <see cref="ProbeDescriptor.Kind"/> must be <see cref="ProbeKind.Method"/>.</param>
    public MethodProbeSite(ProbeDescriptor descriptor)
        : base(descriptor)
    {
        if (descriptor.Kind != ProbeKind.Method)
            throw new ArgumentException($"The probe '{descriptor.Id}' is a {descriptor.Kind} probe; a MethodProbeSite needs a method one.", nameof(descriptor));
    }

    /// <summary>True while a consumer is attached: one load and one branch, inlined at the call site.</summary>
    public bool IsEnabled
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _bindings is not null;
    }

    /// <inheritdoc />
    public override int ConsumerCount => Volatile.Read(ref _bindings)?.Length ?? 0;

    /// <summary>Delivers an entry hit and returns the start timestamp to pass to <see cref="Return"/> or <see cref="Throw"/>.</summary>
    public long Entry(in TArgs args)
    {
        long start = Stopwatch.GetTimestamp();
        SrcuReadGuard guard = Probes.Domain.Enter();
        try
        {
            CallBinding<TArgs, TResult>[]? bindings = Volatile.Read(ref _bindings);
            if (TestHooks.Enabled)
                TestHooks.Hit(HookPoint.SiteBindingsLoaded, this);
            if (bindings is null)
                return start;
            foreach (CallBinding<TArgs, TResult> binding in bindings)
            {
                try
                {
                    binding.OnEntry(in args, start);
                }
                catch (Exception ex)
                {
                    binding.Attachment.ReportFault(ex);
                }
            }
        }
        finally
        {
            guard.Dispose();
        }
        return start;
    }

    /// <summary>Delivers a return hit for a call that returned <paramref name="result"/>.</summary>
    /// <param name="args">The arguments, with out and ref values as they are now.</param>
    /// <param name="result">The returned (or awaited) value.</param>
    /// <param name="startTimestamp">What <see cref="Entry"/> returned, or 0 if it was not called.</param>
    public void Return(in TArgs args, in TResult result, long startTimestamp) => Complete(in args, in result, startTimestamp, null);

    /// <summary>Delivers a return hit for a call that threw. The caller rethrows the exception unchanged.</summary>
    /// <param name="args">The arguments, with out and ref values as they are now.</param>
    /// <param name="exception">What the call threw.</param>
    /// <param name="startTimestamp">What <see cref="Entry"/> returned, or 0 if it was not called.</param>
    /// <returns>False, so it can sit in an exception filter (<c>catch (Exception e) when (site.Throw(...))</c>) and leave the stack untouched.</returns>
    public bool Throw(in TArgs args, Exception exception, long startTimestamp)
    {
        TResult none = default!;
        Complete(in args, in none, startTimestamp, exception);
        return false;
    }

    private void Complete(in TArgs args, in TResult result, long startTimestamp, Exception? exception)
    {
        long end = Stopwatch.GetTimestamp();
        long elapsed = startTimestamp == 0 ? 0 : end - startTimestamp;
        SrcuReadGuard guard = Probes.Domain.Enter();
        try
        {
            CallBinding<TArgs, TResult>[]? bindings = Volatile.Read(ref _bindings);
            if (TestHooks.Enabled)
                TestHooks.Hit(HookPoint.SiteBindingsLoaded, this);
            if (bindings is null)
                return;
            foreach (CallBinding<TArgs, TResult> binding in bindings)
            {
                try
                {
                    binding.OnReturn(in args, in result, end, elapsed, exception);
                }
                catch (Exception ex)
                {
                    binding.Attachment.ReportFault(ex);
                }
            }
        }
        finally
        {
            guard.Dispose();
        }
    }

    internal ProbeBinding BindUnderLock(ProbeAttachment attachment, ProbeAction<TArgs>? onEntry, ProbeReturnAction<TArgs, TResult>? onReturn)
    {
        var binding = new TypedCallBinding(attachment, this, onEntry, onReturn);
        BindingArray.AddUnderLock(ref _bindings, binding);
        return binding;
    }

    internal override ProbeBinding BindUnderLock(ProbeAttachment attachment, ProbeConsumer consumer, object? state)
    {
        var binding = new ConsumerCallBinding(attachment, this, consumer, state);
        BindingArray.AddUnderLock(ref _bindings, binding);
        return binding;
    }

    internal override void UnbindUnderLock(ProbeBinding binding) =>
        BindingArray.RemoveUnderLock(ref _bindings, (CallBinding<TArgs, TResult>)binding);

    private sealed class TypedCallBinding(ProbeAttachment attachment, ProbeSite site, ProbeAction<TArgs>? onEntry, ProbeReturnAction<TArgs, TResult>? onReturn)
        : CallBinding<TArgs, TResult>(attachment, site)
    {
        public override void OnEntry(in TArgs args, long timestamp) => onEntry?.Invoke(in args);

        public override void OnReturn(in TArgs args, in TResult result, long timestamp, long elapsedTicks, Exception? exception)
        {
            if (onReturn is not null)
                onReturn(in args, new ProbeReturn<TResult>(in result, elapsedTicks, exception));
        }
    }

    private sealed class ConsumerCallBinding(ProbeAttachment attachment, ProbeSite site, ProbeConsumer consumer, object? state)
        : CallBinding<TArgs, TResult>(attachment, site)
    {
        private readonly bool _entry = (attachment.Options.Points & ProbePoints.Entry) != 0;
        private readonly bool _return = (attachment.Options.Points & ProbePoints.Return) != 0;

        public override void OnEntry(in TArgs args, long timestamp)
        {
            if (!_entry)
                return;
            var hit = new ProbeHit(Site.Descriptor, ProbePoint.Entry,
                ref Unsafe.As<TArgs, byte>(ref Unsafe.AsRef(in args)), ArgsAccessor<TArgs>.Instance, state,
                timestamp, ref Unsafe.NullRef<byte>(), null, 0, null);
            consumer.OnHit(in hit);
        }

        public override void OnReturn(in TArgs args, in TResult result, long timestamp, long elapsedTicks, Exception? exception)
        {
            if (!_return)
                return;
            var hit = new ProbeHit(Site.Descriptor, ProbePoint.Return,
                ref Unsafe.As<TArgs, byte>(ref Unsafe.AsRef(in args)), ArgsAccessor<TArgs>.Instance, state,
                timestamp, ref Unsafe.As<TResult, byte>(ref Unsafe.AsRef(in result)), ValueAccessor<TResult>.Instance,
                elapsedTicks, exception);
            consumer.OnHit(in hit);
        }
    }
}

/// <summary>A consumer bound to a method site.</summary>
internal abstract class CallBinding<TArgs, TResult>(ProbeAttachment attachment, ProbeSite site) : ProbeBinding(attachment, site)
    where TArgs : struct, IProbeArgs
{
    public abstract void OnEntry(in TArgs args, long timestamp);

    public abstract void OnReturn(in TArgs args, in TResult result, long timestamp, long elapsedTicks, Exception? exception);
}
