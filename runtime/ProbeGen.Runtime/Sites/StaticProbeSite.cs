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
    public void Fire(in TArgs args)
    {
        SrcuReadGuard guard = Probes.Domain.Enter();
        try
        {
            // Acquire, pairing with the release in BindingArray: a binding we load is complete.
            FireBinding<TArgs>[]? bindings = Volatile.Read(ref _bindings);
            if (TestHooks.Enabled)
                TestHooks.Hit(HookPoint.SiteBindingsLoaded, this);
            if (bindings is null)
                return;
            foreach (FireBinding<TArgs> binding in bindings)
            {
                try
                {
                    binding.OnFire(in args);
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

    internal ProbeBinding BindUnderLock(ProbeAttachment attachment, ProbeAction<TArgs> handler)
    {
        var binding = new TypedFireBinding(attachment, this, handler);
        BindingArray.AddUnderLock(ref _bindings, binding);
        return binding;
    }

    internal override ProbeBinding BindUnderLock(ProbeAttachment attachment, ProbeConsumer consumer, object? state)
    {
        var binding = new ConsumerFireBinding(attachment, this, consumer, state);
        BindingArray.AddUnderLock(ref _bindings, binding);
        return binding;
    }

    internal override void UnbindUnderLock(ProbeBinding binding) =>
        BindingArray.RemoveUnderLock(ref _bindings, (FireBinding<TArgs>)binding);

    private sealed class TypedFireBinding(ProbeAttachment attachment, ProbeSite site, ProbeAction<TArgs> handler)
        : FireBinding<TArgs>(attachment, site)
    {
        public override void OnFire(in TArgs args) => handler(in args);
    }

    private sealed class ConsumerFireBinding(ProbeAttachment attachment, ProbeSite site, ProbeConsumer consumer, object? state)
        : FireBinding<TArgs>(attachment, site)
    {
        public override void OnFire(in TArgs args)
        {
            var hit = new ProbeHit(Site.Descriptor, ProbePoint.Fire,
                ref Unsafe.As<TArgs, byte>(ref Unsafe.AsRef(in args)), ArgsAccessor<TArgs>.Instance, state,
                Stopwatch.GetTimestamp(), ref Unsafe.NullRef<byte>(), null, 0, null);
            consumer.OnHit(in hit);
        }
    }
}

/// <summary>A consumer bound to a static site.</summary>
internal abstract class FireBinding<TArgs>(ProbeAttachment attachment, ProbeSite site) : ProbeBinding(attachment, site)
    where TArgs : struct, IProbeArgs
{
    public abstract void OnFire(in TArgs args);
}
