using System;
using System.Diagnostics.CodeAnalysis;

namespace ProbeGen.Internal;

/// <summary>Cold throws, kept out of hot methods so those stay small and inlinable.</summary>
internal static class ThrowHelper
{
    [DoesNotReturn]
    public static void ThrowSynchronizeInReadSection(string domain) =>
        throw new InvalidOperationException(
            $"Synchronize() was called inside a read-side section of the SRCU domain '{domain}'. " +
            "It would wait for the calling section itself and never return. Use Defer() instead.");

    [DoesNotReturn]
    public static void ThrowBarrierInReadSection(string domain) =>
        throw new InvalidOperationException(
            $"Barrier() was called inside a read-side section of the SRCU domain '{domain}'. " +
            "It would wait for a grace period that waits for the calling section.");

    [DoesNotReturn]
    public static void ThrowBarrierFromCallback(string domain) =>
        throw new InvalidOperationException(
            $"Barrier() was called from a deferred callback of the SRCU domain '{domain}'. " +
            "It would wait for the callback that is calling it.");

    [DoesNotReturn]
    public static void ThrowGracePeriodWaitUnderWriterLock(string operation, string domain) =>
        throw new InvalidOperationException(
            $"{operation}() of the SRCU domain '{domain}' was called while holding the probe writer lock, " +
            "for example inside ProbeConsumer.OnAttach. It cannot wait for a grace period there: a handler " +
            "that detaches deferred, attaches or faults needs that lock to leave its read-side section, so " +
            "the wait could never end. Use ProbeAttachment.DetachDeferred() or Defer() instead.");

    [DoesNotReturn]
    public static void ThrowDetachUnderWriterLock() =>
        throw new InvalidOperationException(
            "A probe attachment cannot be disposed inside ProbeConsumer.OnAttach, or anywhere else the " +
            "probe writer lock is held: Dispose() waits for a grace period, and a handler that detaches " +
            "deferred, attaches or faults needs that lock to finish, so the wait could never end. " +
            "Call DetachDeferred() instead; it returns at once and completes after the grace period.");

    [DoesNotReturn]
    public static void ThrowDetachInsideHandler() =>
        throw new InvalidOperationException(
            "A probe attachment cannot be disposed from inside a probe handler: Dispose() waits for " +
            "every running handler to finish, including the one calling it. " +
            "Call DetachDeferred() instead; it returns at once and completes after the grace period.");

    [DoesNotReturn]
    public static void ThrowEntryDead() =>
        throw new InvalidOperationException(
            "The registry entry is dead (its last reference was released). A dead entry is never revived: create a new one.");

    [DoesNotReturn]
    public static void ThrowReleaseUnderflow() =>
        throw new InvalidOperationException("A registry entry was released more times than it was referenced.");

    [DoesNotReturn]
    public static void ThrowDuplicateKey(object key) =>
        throw new ArgumentException($"The registry already holds an entry with the key '{key}'.");
}
