using System;

namespace ProbeGen;

/// <summary>Handles a hit seen through the untyped view.</summary>
/// <param name="hit">The hit; valid only during the call.</param>
public delegate void ProbeHandler(in ProbeHit hit);

/// <summary>
/// A consumer attached by pattern. Subclass it for consumers that keep per-probe state, like the
/// built-in <see cref="ProbeCounter"/> and <see cref="ProbeHistogram"/>.
/// </summary>
/// <remarks>
/// <para><b>Handler contract.</b> <see cref="OnHit"/> runs on the probed thread, inside a
/// read-side section of <see cref="Probes.Domain"/>, on every hit. It may read the hit, update its
/// own state with interlocked or thread-local writes, and queue work elsewhere. It must not block
/// (locks, I/O, waits), must not wait for a grace period (dispose an attachment, call
/// <c>Synchronize</c> or <c>Barrier</c>; use <see cref="ProbeAttachment.DetachDeferred"/>), and
/// should not allocate per hit. An exception it throws is contained and counted; after
/// <see cref="ProbeAttachOptions.MaxFaults"/> of them the attachment is detached.</para>
/// </remarks>
public abstract class ProbeConsumer
{
    /// <summary>
    /// Called once for each probe the consumer is bound to, including probes registered after the
    /// attach. Runs under the runtime's writer lock: keep it short, and never wait for a grace
    /// period here. Disposing an attachment, <c>Synchronize</c> and <c>Barrier</c> of
    /// <see cref="Probes.Domain"/> throw <see cref="InvalidOperationException"/> inside it, because a
    /// running handler may need the same lock to finish; <see cref="ProbeAttachment.DetachDeferred"/>
    /// and attaching are fine.
    /// </summary>
    /// <remarks>
    /// An exception it throws while <see cref="Probes.Attach(string, ProbeConsumer, ProbeAttachOptions?)"/>
    /// binds existing probes propagates from that call, and the attachment is detached. One thrown
    /// for a probe registered later is counted as a handler fault, and that probe is not bound.
    /// </remarks>
    /// <returns>Per-probe state, handed back as <see cref="ProbeHit.State"/> on each hit of that probe.</returns>
    protected internal virtual object? OnAttach(ProbeDescriptor probe) => null;

    /// <summary>Handles one hit. See the handler contract on the class.</summary>
    [ProbeHandler]
    protected internal abstract void OnHit(in ProbeHit hit);
}

/// <summary>Adapts a <see cref="ProbeHandler"/> delegate.</summary>
internal sealed class DelegateConsumer(ProbeHandler handler) : ProbeConsumer
{
    protected internal override void OnHit(in ProbeHit hit) => handler(in hit);
}

/// <summary>Options for an attachment.</summary>
public sealed record ProbeAttachOptions
{
    /// <summary>The defaults: every point, detach after 10 handler faults.</summary>
    public static ProbeAttachOptions Default { get; } = new();

    /// <summary>Handler exceptions tolerated before the attachment detaches itself. At least 1.</summary>
    public int MaxFaults
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(MaxFaults), value, "MaxFaults must be at least 1.");
    } = 10;

    /// <summary>The points a pattern consumer sees. Typed attachments ignore it.</summary>
    public ProbePoints Points { get; init; } = ProbePoints.All;
}

/// <summary>Why an attachment was detached.</summary>
public enum ProbeDetachReason
{
    /// <summary>Still attached.</summary>
    None,

    /// <summary>Disposed, or detached deferred, by its owner.</summary>
    Requested,

    /// <summary>Its handler threw <see cref="ProbeAttachOptions.MaxFaults"/> times, or its <see cref="ProbeConsumer.OnAttach"/> threw while it was being attached.</summary>
    Faulted,
}
