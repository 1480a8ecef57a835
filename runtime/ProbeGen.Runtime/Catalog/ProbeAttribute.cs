using System;

namespace ProbeGen;

/// <summary>
/// Marks a method as a probe. On a <c>partial</c> method declaration without a body it declares a
/// static (USDT-style) probe whose body the generator writes; on a method with a body it declares
/// a method probe that fires <c>entry</c> and <c>return</c> at every call site the generator can
/// intercept.
/// </summary>
/// <remarks>The probe id is <c>provider:name</c>; ids are unique per assembly.</remarks>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class ProbeAttribute : Attribute
{
    /// <summary>Declares a probe named after the method, as written.</summary>
    public ProbeAttribute()
    {
    }

    /// <summary>Declares a probe with an explicit name.</summary>
    /// <param name="name">The probe's name within its provider.</param>
    public ProbeAttribute(string name) => Name = name;

    /// <summary>The probe's name within its provider; the method name when not set.</summary>
    public string? Name { get; set; }

    /// <summary>The probe's provider; the containing type's <see cref="ProbeProviderAttribute"/>, else its full name, when not set.</summary>
    public string? Provider { get; set; }
}

/// <summary>Sets the provider of every probe declared in a type.</summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct, AllowMultiple = false, Inherited = false)]
public sealed class ProbeProviderAttribute : Attribute
{
    /// <summary>Sets the provider name.</summary>
    /// <param name="name">The provider, the part of a probe id before the colon.</param>
    public ProbeProviderAttribute(string name) => Name = name;

    /// <summary>The provider name.</summary>
    public string Name { get; }
}

/// <summary>
/// Marks the generated body of a static probe, so that other assemblies' generators see in
/// metadata that its calls need no interceptor. Applied by generated code only.
/// </summary>
[System.ComponentModel.EditorBrowsable(System.ComponentModel.EditorBrowsableState.Never)]
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class GeneratedStaticProbeAttribute : Attribute
{
}
