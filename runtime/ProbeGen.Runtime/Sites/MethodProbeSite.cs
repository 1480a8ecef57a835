using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
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

    /// <summary>
    /// The one site of a method probe declared in another assembly, for interceptors compiled into
    /// a calling assembly: hits from every assembly reach the same consumers. When the site cannot
    /// be found (an assembly built by an older generator, or a different signature), returns a
    /// site that nothing registers, so the program runs on and the call simply never fires.
    /// </summary>
    /// <param name="requestingAssembly">The calling assembly, which references the declaring one.</param>
    /// <param name="assemblyName">The declaring assembly's simple name.</param>
    /// <param name="methodKey">The probed method's documentation-comment id.</param>
    [System.ComponentModel.EditorBrowsable(System.ComponentModel.EditorBrowsableState.Never)]
    public static MethodProbeSite<TArgs, TResult> Resolve(System.Reflection.Assembly requestingAssembly, string assemblyName, string methodKey) =>
        ProbeCatalog.FindMethod(assemblyName, methodKey, requestingAssembly) as MethodProbeSite<TArgs, TResult>
        ?? new MethodProbeSite<TArgs, TResult>(new ProbeDescriptor("unresolved", assemblyName, ProbeKind.Method, []) { MethodKey = methodKey });

    /// <summary>True while a consumer is attached: one load and one branch, inlined at the call site.</summary>
    public bool IsEnabled
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _bindings is not null;
    }

    /// <inheritdoc />
    public override int ConsumerCount => Volatile.Read(ref _bindings)?.Length ?? 0;

    /// <summary>Delivers an entry hit and returns the start timestamp to pass to <see cref="Return"/> or <see cref="Throw"/>.</summary>
    /// <remarks>No exception leaves the delivery, so the section needs no finally (see <see cref="StaticProbeSite{TArgs}.Fire"/>).</remarks>
    public long Entry(in TArgs args)
    {
        long start = Stopwatch.GetTimestamp();
        SrcuReadGuard guard = Probes.Domain.Enter();
        CallBinding<TArgs, TResult>[]? bindings = Volatile.Read(ref _bindings);
        if (TestHooks.Enabled)
            TestHooks.Hit(HookPoint.SiteBindingsLoaded, this);
        if (bindings is not null)
            DeliverEntry(bindings, in args, start);
        guard.Dispose();
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

    /// <summary>
    /// Fires the return hit when <paramref name="task"/> completes. A task that has already
    /// completed gets its hit at once and is returned as it is. Any other is returned as a task
    /// with the same outcome (result, every exception, or cancellation with its token) that
    /// completes only after the return hit was delivered: a caller that resumes after its await
    /// has always seen the hit, even when the original task's completion raced with the call.
    /// </summary>
    /// <param name="task">What the probed method returned.</param>
    /// <param name="args">The arguments, as <see cref="Entry"/> saw them.</param>
    /// <param name="startTimestamp">What <see cref="Entry"/> returned.</param>
    public Task<T> ReturnWhenCompleted<T>(Task<T> task, TArgs args, long startTimestamp)
    {
        if (task.IsCompleted)
        {
            CompleteFrom(task, in args, startTimestamp);
            return task;
        }
        var pending = new PendingReturn<T>(this, args, startTimestamp);
        // The continuation captures this flow's context, where the call's span (if any) is still
        // current, so its return hit can end it; only then does the caller's flow leave it.
        task.ContinueWith(static (t, state) => ((PendingReturn<T>)state!).Complete(t),
            pending, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        if (startTimestamp != 0)
            ProbeSpans.LeavePending(Descriptor);
        return pending.Task;
    }

    /// <inheritdoc cref="ReturnWhenCompleted{T}(Task{T}, TArgs, long)"/>
    public Task ReturnWhenCompleted(Task task, TArgs args, long startTimestamp)
    {
        if (task.IsCompleted)
        {
            CompleteFrom(task, in args, startTimestamp);
            return task;
        }
        var pending = new PendingReturn(this, args, startTimestamp);
        // The continuation captures this flow's context, where the call's span (if any) is still
        // current, so its return hit can end it; only then does the caller's flow leave it.
        task.ContinueWith(static (t, state) => ((PendingReturn)state!).Complete(t),
            pending, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        if (startTimestamp != 0)
            ProbeSpans.LeavePending(Descriptor);
        return pending.Task;
    }

    /// <summary>
    /// Fires the return hit when <paramref name="task"/> completes. A value task that completed
    /// successfully keeps its synchronous fast path (its result is read once and handed back in a
    /// new value task); any other is turned into a task, which the returned value task wraps.
    /// </summary>
    /// <param name="task">What the probed method returned; consumed.</param>
    /// <param name="args">The arguments, as <see cref="Entry"/> saw them.</param>
    /// <param name="startTimestamp">What <see cref="Entry"/> returned.</param>
    public ValueTask<T> ReturnWhenCompleted<T>(ValueTask<T> task, TArgs args, long startTimestamp)
    {
        if (task.IsCompletedSuccessfully)
        {
            T result = task.Result;
            TResult reported = ProbeValues.Cast<T, TResult>(result);
            Complete(in args, in reported, startTimestamp, null);
            return new ValueTask<T>(result);
        }
        return new ValueTask<T>(ReturnWhenCompleted(task.AsTask(), args, startTimestamp));
    }

    /// <inheritdoc cref="ReturnWhenCompleted{T}(ValueTask{T}, TArgs, long)"/>
    public ValueTask ReturnWhenCompleted(ValueTask task, TArgs args, long startTimestamp)
    {
        if (task.IsCompletedSuccessfully)
        {
            task.GetAwaiter().GetResult();  // consume it, as the caller's await would have
            TResult none = default!;
            Complete(in args, in none, startTimestamp, null);
            return default;
        }
        return new ValueTask(ReturnWhenCompleted(task.AsTask(), args, startTimestamp));
    }

    /// <summary>The return hit of a task that had completed before the caller could see it; the caller may still observe it or not, so its exception is read unobserved.</summary>
    private void CompleteFrom<T>(Task<T> task, in TArgs args, long startTimestamp)
    {
        if (task.IsCompletedSuccessfully)
        {
            TResult reported = ProbeValues.Cast<T, TResult>(task.Result);
            Complete(in args, in reported, startTimestamp, null);
        }
        else
        {
            CompleteFrom((Task)task, in args, startTimestamp);
        }
    }

    private void CompleteFrom(Task task, in TArgs args, long startTimestamp)
    {
        TResult none = default!;
        Complete(in args, in none, startTimestamp, task.IsCompletedSuccessfully ? null : TaskFaults.Read(task));
    }

    /// <summary>
    /// The task a caller awaits in place of a pending one. The original's exceptions are observed
    /// here and handed on, so they stay unobserved exactly as long as the caller leaves this task so.
    /// </summary>
    private sealed class PendingReturn<T>(MethodProbeSite<TArgs, TResult> site, TArgs args, long startTimestamp) : TaskCompletionSource<T>
    {
        public void Complete(Task<T> task)
        {
            if (task.IsCompletedSuccessfully)
            {
                T result = task.Result;
                try
                {
                    TResult reported = ProbeValues.Cast<T, TResult>(result);
                    site.Complete(in args, in reported, startTimestamp, null);
                }
                finally
                {
                    SetResult(result);
                }
            }
            else
            {
                site.CompleteFailed(task, in args, startTimestamp, SetCanceled, SetException);
            }
        }
    }

    /// <inheritdoc cref="PendingReturn{T}"/>
    private sealed class PendingReturn(MethodProbeSite<TArgs, TResult> site, TArgs args, long startTimestamp) : TaskCompletionSource
    {
        public void Complete(Task task)
        {
            if (task.IsCompletedSuccessfully)
            {
                try
                {
                    TResult none = default!;
                    site.Complete(in args, in none, startTimestamp, null);
                }
                finally
                {
                    SetResult();
                }
            }
            else
            {
                site.CompleteFailed(task, in args, startTimestamp, SetCanceled, SetException);
            }
        }
    }

    /// <summary>
    /// Fires the return hit of a faulted or canceled task, then hands the caller's task the same
    /// outcome, even if the hit failed: the cancellation token, or every exception (reading them
    /// here observes the original; the caller's task holds them unobserved in its place).
    /// </summary>
    private void CompleteFailed(Task task, in TArgs args, long startTimestamp, Action<CancellationToken> setCanceled, Action<IEnumerable<Exception>> setException)
    {
        TResult none = default!;
        if (task.IsCanceled)
        {
            var canceled = new TaskCanceledException(task);
            try
            {
                Complete(in args, in none, startTimestamp, canceled);
            }
            finally
            {
                setCanceled(canceled.CancellationToken);
            }
        }
        else
        {
            AggregateException all = task.Exception!;
            try
            {
                Complete(in args, in none, startTimestamp, all.InnerExceptions.Count == 1 ? all.InnerExceptions[0] : all);
            }
            finally
            {
                setException(all.InnerExceptions);
            }
        }
    }

    private void Complete(in TArgs args, in TResult result, long startTimestamp, Exception? exception)
    {
        long end = Stopwatch.GetTimestamp();
        long elapsed = startTimestamp == 0 ? 0 : end - startTimestamp;
        SrcuReadGuard guard = Probes.Domain.Enter();
        CallBinding<TArgs, TResult>[]? bindings = Volatile.Read(ref _bindings);
        if (TestHooks.Enabled)
            TestHooks.Hit(HookPoint.SiteBindingsLoaded, this);
        if (bindings is not null)
            DeliverReturn(bindings, in args, in result, end, elapsed, exception);
        guard.Dispose();
    }

    /// <summary>Calls each entry handler; never throws. The try block sits outside the loop (see <see cref="StaticProbeSite{TArgs}"/>).</summary>
    private static void DeliverEntry(CallBinding<TArgs, TResult>[] bindings, in TArgs args, long timestamp)
    {
        int i = 0;
        while (true)
        {
            try
            {
                for (; i < bindings.Length; i++)
                    bindings[i].OnEntry?.Invoke(in args, timestamp);
                return;
            }
            catch (Exception ex)
            {
                bindings[i].Attachment.ReportFault(ex);
                i++;
            }
        }
    }

    /// <summary>Calls each return handler; never throws.</summary>
    private static void DeliverReturn(CallBinding<TArgs, TResult>[] bindings, in TArgs args, in TResult result, long timestamp, long elapsed, Exception? exception)
    {
        int i = 0;
        while (true)
        {
            try
            {
                for (; i < bindings.Length; i++)
                    bindings[i].OnReturn?.Invoke(in args, in result, timestamp, elapsed, exception);
                return;
            }
            catch (Exception ex)
            {
                bindings[i].Attachment.ReportFault(ex);
                i++;
            }
        }
    }

    internal ProbeBinding BindUnderLock(ProbeAttachment attachment, ProbeAction<TArgs>? onEntry, ProbeReturnAction<TArgs, TResult>? onReturn)
    {
        EntryHandler<TArgs>? entry = onEntry is null ? null : (in TArgs args, long _) => onEntry(in args);
        ReturnHandler<TArgs, TResult>? ret = onReturn is null ? null
            : (in TArgs args, in TResult result, long _, long elapsed, Exception? exception) =>
                onReturn(in args, new ProbeReturn<TResult>(in result, elapsed, exception));
        return BindUnderLock(new CallBinding<TArgs, TResult>(attachment, this, entry, ret));
    }

    internal override ProbeBinding BindUnderLock(ProbeAttachment attachment, ProbeConsumer consumer, object? state)
    {
        ProbeDescriptor probe = Descriptor;
        // The untyped views are built on the stack per hit; nothing is allocated.
        EntryHandler<TArgs>? entry = (attachment.Options.Points & ProbePoints.Entry) == 0 ? null
            : (in TArgs args, long timestamp) =>
            {
                var hit = new ProbeHit(probe, ProbePoint.Entry,
                    ref Unsafe.As<TArgs, byte>(ref Unsafe.AsRef(in args)), ArgsAccessor<TArgs>.Instance, state,
                    timestamp, ref Unsafe.NullRef<byte>(), null, 0, null);
                consumer.OnHit(in hit);
            };
        ReturnHandler<TArgs, TResult>? ret = (attachment.Options.Points & ProbePoints.Return) == 0 ? null
            : (in TArgs args, in TResult result, long timestamp, long elapsed, Exception? exception) =>
            {
                var hit = new ProbeHit(probe, ProbePoint.Return,
                    ref Unsafe.As<TArgs, byte>(ref Unsafe.AsRef(in args)), ArgsAccessor<TArgs>.Instance, state,
                    timestamp, ref Unsafe.As<TResult, byte>(ref Unsafe.AsRef(in result)), ValueAccessor<TResult>.Instance,
                    elapsed, exception);
                consumer.OnHit(in hit);
            };
        return BindUnderLock(new CallBinding<TArgs, TResult>(attachment, this, entry, ret));
    }

    private ProbeBinding BindUnderLock(CallBinding<TArgs, TResult> binding)
    {
        BindingArray.AddUnderLock(ref _bindings, binding);
        return binding;
    }

    internal override void UnbindUnderLock(ProbeBinding binding) =>
        BindingArray.RemoveUnderLock(ref _bindings, (CallBinding<TArgs, TResult>)binding);
}

/// <summary>An entry handler with the hit's timestamp.</summary>
internal delegate void EntryHandler<TArgs>(in TArgs args, long timestamp) where TArgs : struct, IProbeArgs;

/// <summary>A return handler with the hit's timestamp, the elapsed ticks and the exception.</summary>
internal delegate void ReturnHandler<TArgs, TResult>(in TArgs args, in TResult result, long timestamp, long elapsedTicks, Exception? exception)
    where TArgs : struct, IProbeArgs;

/// <summary>A consumer bound to a method site: typed handlers wrapped, pattern consumers through adapter delegates.</summary>
internal sealed class CallBinding<TArgs, TResult>(ProbeAttachment attachment, ProbeSite site, EntryHandler<TArgs>? onEntry, ReturnHandler<TArgs, TResult>? onReturn)
    : ProbeBinding(attachment, site)
    where TArgs : struct, IProbeArgs
{
    public readonly EntryHandler<TArgs>? OnEntry = onEntry;

    public readonly ReturnHandler<TArgs, TResult>? OnReturn = onReturn;
}
