using System;
using System.Runtime.CompilerServices;

namespace ProbeGen.Internal;

/// <summary>The places where a deterministic-interleaving test can stop a thread.</summary>
internal enum HookPoint
{
    /// <summary>A lockless registry lookup has read one slot of its probe sequence (the subject is the slot index).</summary>
    RegistryProbedSlot,

    /// <summary>A lockless registry lookup has found an entry and not yet checked that it is alive.</summary>
    RegistryFoundBeforeAcquire,

    /// <summary>A probe hit has loaded its consumer bindings inside the read-side section and not yet called them.</summary>
    SiteBindingsLoaded,

    /// <summary>An SRCU reader has loaded the domain's current index and not yet counted itself under it (the subject is the domain).</summary>
    SrcuReaderIndexLoaded,

    /// <summary>A grace period is waiting for a reader to leave; reported on every round of the wait (the subject is the reader's slot).</summary>
    SrcuWaitingForReader,
}

/// <summary>
/// Test-only interleaving hooks. <see cref="Enabled"/> is a static readonly field read once from the
/// AppContext switch <c>ProbeGen.EnableTestHooks</c>; the tiered JIT folds it to a constant, so in
/// a normal process every hook call is dead code and costs nothing.
/// </summary>
internal static class TestHooks
{
    /// <summary>True only in processes that set the <c>ProbeGen.EnableTestHooks</c> switch.</summary>
    public static readonly bool Enabled =
        AppContext.TryGetSwitch("ProbeGen.EnableTestHooks", out bool on) && on;

    /// <summary>The test's callback. Written by tests; read by the hooked code paths.</summary>
    public static volatile Action<HookPoint, object?>? Callback;

    /// <summary>The last exception a callback threw. A hook sits on paths that must not throw (inside a read-side section with no finally), so it is kept here instead.</summary>
    public static volatile Exception? Failure;

    /// <summary>Calls the test's callback; never throws.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Hit(HookPoint point, object? subject)
    {
        try
        {
            Callback?.Invoke(point, subject);
        }
        catch (Exception ex)
        {
            Failure = ex;
        }
    }
}
