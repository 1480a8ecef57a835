using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using ProbeGen.Internal;

namespace ProbeGen;

/// <summary>
/// A consumer attached to one probe or to every probe matching a pattern. Dispose it to detach.
/// </summary>
/// <remarks>
/// <para><b>Detach guarantee.</b> <see cref="Dispose"/> returns only after every in-flight call of
/// the handler has finished (a grace period of <see cref="Probes.Domain"/>); from then on the
/// handler is never called again. <see cref="DetachDeferred"/> stops new hits at once and returns a
/// task that completes once the same guarantee holds.</para>
/// </remarks>
public sealed class ProbeAttachment : IDisposable, IAsyncDisposable
{
    private const int Attached = 0, Detaching = 1;

    /// <summary>The bindings this attachment made. Changed and read under the writer lock of <see cref="Probes"/>.</summary>
    private readonly List<ProbeBinding> _bindings = [];

    /// <summary>Attached or detaching; moves once, under the writer lock of <see cref="Probes"/>.</summary>
    private int _state;

    private readonly TaskCompletionSource _detached = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _faults;
    private Exception? _firstFault;
    private Exception? _lastFault;
    private int _detachReason;

    internal ProbeAttachment(ProbePattern? pattern, ProbeConsumer? consumer, ProbeAttachOptions options, string description)
    {
        Pattern = pattern;
        Consumer = consumer;
        Options = options;
        Description = description;
    }

    /// <summary>The pattern, for an attachment by pattern; null for a typed attachment to one site.</summary>
    public ProbePattern? Pattern { get; }

    /// <summary>The options it was attached with.</summary>
    public ProbeAttachOptions Options { get; }

    /// <summary>What was attached, for diagnostics.</summary>
    public string Description { get; }

    internal ProbeConsumer? Consumer { get; }

    /// <summary>Handler exceptions contained so far.</summary>
    public long FaultCount => Interlocked.Read(ref _faults);

    /// <summary>The first handler exception, if any: usually the cause of the ones that follow.</summary>
    public Exception? FirstFault => Volatile.Read(ref _firstFault);

    /// <summary>The most recent handler exception, if any.</summary>
    public Exception? LastFault => Volatile.Read(ref _lastFault);

    /// <summary>Why it was detached, or <see cref="ProbeDetachReason.None"/> while attached.</summary>
    public ProbeDetachReason DetachReason => (ProbeDetachReason)Volatile.Read(ref _detachReason);

    /// <summary>Completes when the attachment is fully detached: the handler will never run again.</summary>
    public Task Completion => _detached.Task;

    /// <summary>True once the attachment is fully detached.</summary>
    public bool IsDetached => _detached.Task.IsCompleted;

    /// <summary>The probes it is bound to now.</summary>
    public IReadOnlyList<ProbeDescriptor> Probes
    {
        get
        {
            lock (ProbeGen.Probes.WriterLock)
                return _bindings.ConvertAll(b => b.Site.Descriptor);
        }
    }

    /// <summary>
    /// Detaches and waits for a grace period: when it returns, the handler is not running and never
    /// will again. Calling it again, or after a deferred detach, waits for a grace period again.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// Called from inside a probe handler, where it would wait for itself, or from
    /// <see cref="ProbeConsumer.OnAttach"/>, where it would wait for handlers that may need the lock
    /// OnAttach runs under; use <see cref="DetachDeferred"/>. Nothing is detached then.
    /// </exception>
    public void Dispose()
    {
        if (ProbeGen.Probes.Domain.ReadOngoing)
            ThrowHelper.ThrowDetachInsideHandler();
        // Checked before unlinking, so a refused Dispose changes nothing. The domain's Synchronize
        // would refuse too, but only after this attachment was already unlinked.
        if (ProbeGen.Probes.WriterLock.IsHeldByCurrentThread)
            ThrowHelper.ThrowDetachUnderWriterLock();
        // Whether this call unlinked or a deferred detach did earlier, the bindings are gone
        // before this grace period starts, so once it ends no handler call can be running. Not
        // waiting for the deferred detach's own completion also keeps a deferred callback that
        // disposes the attachment from waiting for a callback queued behind it.
        Unlink(ProbeDetachReason.Requested);
        ProbeGen.Probes.Domain.Synchronize();
        _detached.TrySetResult();
    }

    /// <summary>
    /// Detaches without waiting: no hit that starts after this call reaches the handler, and the
    /// returned task completes after a grace period, when in-flight calls have finished. Safe inside a handler.
    /// </summary>
    public Task DetachDeferred()
    {
        DetachDeferredBecause(ProbeDetachReason.Requested);
        return _detached.Task;
    }

    /// <summary>Detaches deferred; see <see cref="DetachDeferred()"/>.</summary>
    public ValueTask DisposeAsync() => new(DetachDeferred());

    /// <inheritdoc />
    public override string ToString() => Description;

    internal void AddBindingUnderLock(ProbeBinding binding) => _bindings.Add(binding);

    internal bool IsAttachedUnderLock => _state == Attached;

    /// <summary>Counts a handler exception; the one that reaches <see cref="ProbeAttachOptions.MaxFaults"/> detaches.</summary>
    internal void ReportFault(Exception exception)
    {
        // Handlers fault on several threads at once: exactly one of them sets the first fault.
        Interlocked.CompareExchange(ref _firstFault, exception, null);
        Volatile.Write(ref _lastFault, exception);
        if (Interlocked.Increment(ref _faults) != Options.MaxFaults)
            return;
        try
        {
            DetachDeferredBecause(ProbeDetachReason.Faulted);
        }
        catch (Exception)
        {
            // Runs on the probed thread, which must never see an exception of ours. Only an
            // allocation failure in Defer can get here, after the bindings were removed: no new
            // hit reaches the handler, and the next Dispose completes the detach.
        }
    }

    /// <summary>Detaches deferred for <paramref name="reason"/>; does nothing if already detached. Safe under the writer lock.</summary>
    internal void DetachDeferredBecause(ProbeDetachReason reason)
    {
        if (Unlink(reason))
            ProbeGen.Probes.Domain.Defer(() => _detached.TrySetResult());
    }

    /// <summary>Removes every binding so no new hit reaches the handler. True for the caller that did it.</summary>
    private bool Unlink(ProbeDetachReason reason)
    {
        lock (ProbeGen.Probes.WriterLock)
        {
            if (_state != Attached)
                return false;
            _state = Detaching;
            Volatile.Write(ref _detachReason, (int)reason);
            foreach (ProbeBinding binding in _bindings)
                binding.Site.UnbindUnderLock(binding);
            _bindings.Clear();
            ProbeGen.Probes.ForgetPatternUnderLock(this);
            return true;
        }
    }
}
