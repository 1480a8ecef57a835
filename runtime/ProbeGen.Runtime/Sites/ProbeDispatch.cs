using System;
using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace ProbeGen;

/// <summary>
/// Tells whether a call through an interface member or a virtual base member, on a given receiver,
/// reaches a probed method at run time. Interceptors of such calls ask it only while the probe is
/// enabled, and only for receivers whose type is not exactly the probed method's declaring type
/// (that case is a type test in the generated code).
/// </summary>
/// <remarks>
/// The answer depends only on the receiver's type and the called member's type, so it is computed
/// once per pair with reflection and cached. A receiver whose type re-implements the interface,
/// or overrides the probed method, dispatches elsewhere: the probe does not fire for it. Types the
/// trimmer removed cannot be receivers, so trimming never makes the answer wrong.
/// </remarks>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class ProbeDispatch
{
    private const BindingFlags Declared = BindingFlags.DeclaredOnly | BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;

    private readonly ProbeDescriptor _probe;
    private readonly string[] _parameterTypes;

    /// <summary>Answers by (receiver type, called member's type). Written once per pair; read locklessly.</summary>
    private readonly ConcurrentDictionary<(Type Receiver, Type Called), bool> _answers = new();

    /// <summary>Creates the test for one probed method.</summary>
    /// <param name="site">The probe's site; its descriptor names the declaring type and the method.</param>
    /// <param name="parameterTypes">The probed method's parameter types' metadata names (<c>Int32</c>, <c>List`1</c>, <c>T&amp;</c>), to tell overloads apart.</param>
    public ProbeDispatch(ProbeSite site, params string[] parameterTypes)
    {
        ArgumentNullException.ThrowIfNull(site);
        _probe = site.Descriptor;
        _parameterTypes = parameterTypes ?? [];
    }

    /// <summary>True when calling the member of <paramref name="calledType"/> on <paramref name="receiver"/> runs the probed method.</summary>
    /// <param name="receiver">The call's receiver; null never reaches anything.</param>
    /// <param name="calledType">The interface or class that declares the member the call names (constructed, as at the call site).</param>
    public bool Reaches(object? receiver, Type calledType)
    {
        if (receiver is null)
            return false;
        return _answers.GetOrAdd((receiver.GetType(), calledType), static (key, self) => self.Resolve(key.Receiver, key.Called), this);
    }

    /// <summary>True when <paramref name="receiver"/>'s type is exactly <paramref name="type"/>: after inlining, one compare of type handles.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static bool IsExactly(object? receiver, Type type) => receiver is not null && receiver.GetType() == type;

    /// <summary>
    /// An argument or result of an interface or virtual call as the probed method's site records it:
    /// the same value, seen through the probed method's own parameter type (a generic interface's
    /// <c>T</c> is the implementation's <c>int</c>, for example).
    /// </summary>
    public static TTarget Convert<TSource, TTarget>(TSource value) => ProbeValues.Cast<TSource, TTarget>(value);

    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "A receiver's type exists at run time with the methods it dispatches to; a member the trimmer removed was never called.")]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = "As above.")]
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "As above.")]
    [UnconditionalSuppressMessage("Trimming", "IL2067", Justification = "An interface a receiver implements at run time keeps the methods it maps; one the trimmer removed was never called.")]
    private bool Resolve(Type receiver, Type called)
    {
        Type? declaring = _probe.DeclaringType;
        if (declaring is null || _probe.MethodName is null)
            return false;
        try
        {
            if (declaring.IsInterface)
            {
                // A default interface method: the receiver's map for that interface must still point at it.
                Type? closed = Definition(called) == declaring ? called : Array.Find(receiver.GetInterfaces(), i => Definition(i) == declaring);
                if (closed is null || FindProbed(closed) is not MethodInfo dim)
                    return false;
                InterfaceMapping map = receiver.GetInterfaceMap(closed);
                for (int i = 0; i < map.InterfaceMethods.Length; i++)
                    if (Same(map.InterfaceMethods[i], dim))
                        return Same(map.TargetMethods[i], dim);
                return false;
            }

            Type? owner = receiver;
            while (owner is not null && Definition(owner) != declaring)
                owner = owner.BaseType;
            if (owner is null || FindProbed(owner) is not MethodInfo probed)
                return false;

            if (called.IsInterface)
            {
                InterfaceMapping map = receiver.GetInterfaceMap(called);
                foreach (MethodInfo target in map.TargetMethods)
                    if (Same(target, probed))
                        return true;
                return false;
            }

            if (!probed.IsVirtual || probed.IsFinal)
                return true;
            // Any override between the receiver's type and the declaring type takes the call.
            MethodInfo slot = probed.GetBaseDefinition();
            for (Type? t = receiver; t is not null && t != owner; t = t.BaseType)
                foreach (MethodInfo m in t.GetMethods(Declared))
                    if (m.IsVirtual && m.Name == probed.Name && Same(m.GetBaseDefinition(), slot))
                        return false;
            return true;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or NotSupportedException or TypeLoadException)
        {
            return false;
        }
    }

    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "See Resolve.")]
    private MethodInfo? FindProbed(Type owner)
    {
        MethodInfo? found = null;
        foreach (MethodInfo m in owner.GetMethods(Declared))
        {
            if (m.Name != _probe.MethodName)
                continue;
            ParameterInfo[] parameters = m.GetParameters();
            if (parameters.Length != _parameterTypes.Length)
                continue;
            bool match = true;
            for (int i = 0; i < parameters.Length && match; i++)
                match = parameters[i].ParameterType.Name == _parameterTypes[i];
            if (!match)
                continue;
            if (found is not null)
                return null;  // still ambiguous: never fire for the wrong method
            found = m;
        }
        return found;
    }

    private static Type Definition(Type type) => type.IsGenericType && !type.IsGenericTypeDefinition ? type.GetGenericTypeDefinition() : type;

    private static bool Same(MethodInfo a, MethodInfo b) =>
        a.MetadataToken == b.MetadataToken && a.Module == b.Module && a.DeclaringType == b.DeclaringType;
}
