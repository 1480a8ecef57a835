using System;
using System.Runtime.CompilerServices;
using System.Threading;
using ProbeGen.Registry;

namespace ProbeGen;

/// <summary>
/// A probe site: the object generated code calls on every hit, and the registry entry the catalog
/// holds. Consumers attach to it through <see cref="Probes"/>.
/// </summary>
/// <remarks>
/// Each concrete site keeps its consumer bindings in an array that is replaced whole under
/// <see cref="Probes"/>' writer lock and read locklessly inside a read-side section of
/// <see cref="Probes.Domain"/>. The array is null while nobody is attached, so the disabled check
/// is one load and one branch.
/// </remarks>
public abstract class ProbeSite : RegistryEntry<ProbeKey>
{
    private static long s_serial;

    private protected ProbeSite(ProbeDescriptor descriptor)
        : base(new ProbeKey(descriptor.Id, Interlocked.Increment(ref s_serial)))
    {
        Descriptor = descriptor;
    }

    /// <summary>What the probe is.</summary>
    public ProbeDescriptor Descriptor { get; }

    /// <summary>The number of consumers attached now.</summary>
    public abstract int ConsumerCount { get; }

    /// <summary>True while at least one consumer is attached.</summary>
    public bool HasConsumers => ConsumerCount != 0;

    /// <summary>Binds a pattern consumer. Caller holds the writer lock of <see cref="Probes"/>.</summary>
    internal abstract ProbeBinding BindUnderLock(ProbeAttachment attachment, ProbeConsumer consumer, object? state);

    /// <summary>Removes a binding. Caller holds the writer lock of <see cref="Probes"/>.</summary>
    internal abstract void UnbindUnderLock(ProbeBinding binding);

    /// <inheritdoc />
    public override string ToString() => Descriptor.Id;
}

/// <summary>One consumer attached to one site.</summary>
internal abstract class ProbeBinding(ProbeAttachment attachment, ProbeSite site)
{
    public ProbeAttachment Attachment { get; } = attachment;

    public ProbeSite Site { get; } = site;

    /// <summary>Reports a handler's exception to its attachment. Out of line: it belongs to a catch block.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public void ReportFault(Exception exception) => Attachment.ReportFault(exception);
}

/// <summary>Copy-on-write arrays of bindings: null when empty. Callers hold the writer lock of <see cref="Probes"/>.</summary>
internal static class BindingArray
{
    public static void AddUnderLock<T>(ref T[]? array, T item) where T : class
    {
        T[] current = array ?? [];
        var next = new T[current.Length + 1];
        current.CopyTo(next, 0);
        next[^1] = item;
        // Release: the binding is fully built before a hit can load it. Pairs with the
        // Volatile.Read of the array in the sites' hit paths.
        Volatile.Write(ref array, next);
    }

    public static void RemoveUnderLock<T>(ref T[]? array, T item) where T : class
    {
        T[]? current = array;
        if (current is null)
            return;
        int at = Array.IndexOf(current, item);
        if (at < 0)
            return;
        if (current.Length == 1)
        {
            Volatile.Write(ref array, null);
            return;
        }
        var next = new T[current.Length - 1];
        Array.Copy(current, next, at);
        Array.Copy(current, at + 1, next, at, current.Length - at - 1);
        Volatile.Write(ref array, next);
    }
}
