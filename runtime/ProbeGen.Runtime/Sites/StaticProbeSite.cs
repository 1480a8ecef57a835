using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;
using ProbeGen.Concurrency;
using ProbeGen.Internal;

namespace ProbeGen;

/// <summary>Handles the arguments of a hit on the typed path, without boxing.</summary>
/// <typeparam name="TArgs">The probe's <c>ProbeArgs</c> type.</typeparam>
public delegate void ProbeAction<TArgs>(in TArgs args) where TArgs : struct, IProbeArgs;

/// <summary>
/// The site of a static (USDT-style) probe. Generated code writes
/// <c>if (site.IsEnabled) site.Fire(new ProbeArgs&lt;...&gt;(...));</c> as the probe's body.
/// </summary>
/// <typeparam name="TArgs">The probe's arguments.</typeparam>
public sealed class StaticProbeSite<TArgs> : ProbeSite where TArgs : struct, IProbeArgs
{
    /// <summary>
    /// The attached consumers, or null when none. Replaced whole under the writer lock of
    /// <see cref="Probes"/>; read locklessly by <see cref="IsEnabled"/> and <see cref="Fire"/>.
    /// </summary>
    private FireBinding<TArgs>[]? _bindings;

    /// <summary>
    /// The only binding when there is exactly one, else null: what <see cref="Fire"/> calls without
    /// looking at the array. Written with <see cref="_bindings"/> under the same lock.
    /// </summary>
    private FireBinding<TArgs>? _single;

    /// <summary>Creates a site for a static probe.</summary>
    /// <param name="descriptor">The probe; its <see cref="ProbeDescriptor.Kind"/> must be <see cref="ProbeKind.Static"/>.</param>
    public StaticProbeSite(ProbeDescriptor descriptor)
        : base(descriptor)
    {
        if (descriptor.Kind != ProbeKind.Static)
            throw new ArgumentException($"The probe '{descriptor.Id}' is a {descriptor.Kind} probe; a StaticProbeSite needs a static one.", nameof(descriptor));
    }

    /// <summary>True while a consumer is attached: one load and one branch, inlined at the call site.</summary>
    public bool IsEnabled
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _bindings is not null;
    }

    /// <inheritdoc />
    public override int ConsumerCount => Volatile.Read(ref _bindings)?.Length ?? 0;

    /// <summary>Delivers a hit to every attached consumer, on this thread. Never throws a consumer's exception.</summary>
    /// <param name="args">The probe's arguments.</param>
    /// <remarks>
    /// No exception can leave the delivery (nor a test hook), so the read-side section needs no finally:
    /// without an exception frame this method inlines into the probe's body, and the section's
    /// guard stays in registers. The arguments come by value: a temporary passed by reference
    /// would be a local of the probe's body, which the JIT zeroes on every pass of a loop around
    /// it, even when the probe is disabled; a by-value argument is built only when the probe fires.
    /// </remarks>
    public void Fire(TArgs args)
    {
        SrcuReadGuard guard = Probes.Domain.Enter();
        // Acquire, pairing with the releases in BindingArray and PublishSingle: a binding we load
        // is complete. A site almost always has one consumer: that call needs no array, and no
        // loop index kept in memory for the catch.
        FireBinding<TArgs>? single = Volatile.Read(ref _single);
        FireBinding<TArgs>[]? many = single is null ? Volatile.Read(ref _bindings) : null;
        if (TestHooks.Enabled)
            TestHooks.Hit(HookPoint.SiteBindingsLoaded, this);
        if (single is not null)
            single.Deliver(in args);
        else if (many is not null)
            Deliver(many, in args);
        // A handler's guard cannot outlive its frame, so every section a handler opened and
        // disposed is closed when it returns: this section is the thread's innermost. (A handler
        // that enters and never disposes leaks a section either way; this store may erase it.)
        guard.ExitInnermost();
    }

    /// <summary>
    /// Calls each handler in turn; never throws. The try block sits outside the loop, so the
    /// common path is a plain loop of delegate calls; a fault is reported (ReportFault contains
    /// its own failures) and delivery resumes at the next binding.
    /// </summary>
    private static void Deliver(FireBinding<TArgs>[] bindings, in TArgs args)
    {
        int i = 0;
        while (true)
        {
            try
            {
                for (; i < bindings.Length; i++)
                    bindings[i].Handler(in args);
                return;
            }
            catch (Exception ex)
            {
                bindings[i].Attachment.ReportFault(ex);
                i++;
            }
        }
    }

    internal ProbeBinding BindUnderLock(ProbeAttachment attachment, ProbeAction<TArgs> handler)
    {
        var binding = new FireBinding<TArgs>(attachment, this, handler);
        BindingArray.AddUnderLock(ref _bindings, binding);
        PublishSingle();
        return binding;
    }

    internal override ProbeBinding BindUnderLock(ProbeAttachment attachment, ProbeConsumer consumer, object? state)
    {
        ProbeDescriptor probe = Descriptor;
        // The untyped view is built on the stack per hit; nothing is allocated.
        ProbeAction<TArgs> handler = (in TArgs args) =>
        {
            var hit = new ProbeHit(probe, ProbePoint.Fire,
                ref Unsafe.As<TArgs, byte>(ref Unsafe.AsRef(in args)), ArgsAccessor<TArgs>.Instance, state,
                Stopwatch.GetTimestamp(), ref Unsafe.NullRef<byte>(), null, 0, null);
            consumer.OnHit(in hit);
        };
        return BindUnderLock(attachment, handler);
    }

    internal override void UnbindUnderLock(ProbeBinding binding)
    {
        BindingArray.RemoveUnderLock(ref _bindings, (FireBinding<TArgs>)binding);
        PublishSingle();
    }

    /// <summary>
    /// Follows <see cref="_bindings"/>. A hit between the two stores sees the old single binding or
    /// the new array, either of which is a state the site was in; the detach that follows waits
    /// for that hit's section like any other.
    /// </summary>
    private void PublishSingle() => Volatile.Write(ref _single, _bindings is [var only] ? only : null);
}

/// <summary>A consumer bound to a static site: typed handlers directly, pattern consumers through an adapter delegate.</summary>
internal sealed class FireBinding<TArgs>(ProbeAttachment attachment, ProbeSite site, ProbeAction<TArgs> handler) : ProbeBinding(attachment, site)
    where TArgs : struct, IProbeArgs
{
    public readonly ProbeAction<TArgs> Handler = handler;

    /// <summary>Calls the handler; never throws (ReportFault contains its own failures).</summary>
    /// <remarks>
    /// An instance method, so the call passes no generic context; the catch makes one call with
    /// what it has, so the frame saves no register for it.
    /// </remarks>
    public void Deliver(in TArgs args)
    {
        try
        {
            Handler(in args);
        }
        catch (Exception ex)
        {
            ReportFault(ex);
        }
    }
}
