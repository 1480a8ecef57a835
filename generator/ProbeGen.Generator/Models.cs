using System;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace ProbeGen.Generator;

// Pipeline models. Every model is an immutable, equatable record that holds no symbol and no
// syntax: the incremental pipeline compares them to decide what to re-run, so equality is what
// makes an unrelated edit cheap.

/// <summary>Static (bodiless partial) or method (interceptors) probe.</summary>
internal enum ProbeShape
{
    Static,
    Method,
}

/// <summary>How a method probe's result completes.</summary>
internal enum AsyncKind
{
    None,
    Task,
    TaskOfT,
    ValueTask,
    ValueTaskOfT,
}

/// <summary>One parameter of a probe or of a called method. Equatable; the pipeline caches on it.</summary>
/// <param name="Name">The identifier as it must be written (escaped with @ where needed).</param>
/// <param name="DeclaredName">The name as declared, for the catalog.</param>
/// <param name="Type">The fully qualified type, for signatures.</param>
/// <param name="DisplayType">The type as C# spells it, for the catalog.</param>
/// <param name="SiteType">The type the probe site records: <paramref name="Type"/>, or <c>object?</c> when it depends on a type parameter.</param>
/// <param name="RefKind">"", "ref ", "out ", "in " or "ref readonly ".</param>
/// <param name="IsParams">Declared with <c>params</c>.</param>
/// <param name="Attributes">Attributes the compiler reads at call sites (nullability flow), as C# to copy onto an interceptor's parameter.</param>
/// <param name="MetadataType">The type's metadata name as reflection spells it (<c>Int32</c>, <c>List`1</c>, <c>T&amp;</c>), to tell overloads apart at run time.</param>
/// <param name="Recordable">False for a value no probe can keep (a type parameter that allows ref structs): the site records null.</param>
/// <param name="Redact">"Always" or "Never" from a [ProbeRedact] on the parameter, "" without one.</param>
internal sealed record ParameterSpec(string Name, string DeclaredName, string Type, string DisplayType, string SiteType, string RefKind, bool IsParams,
    string Attributes, string MetadataType, bool Recordable, string Redact)
{
    public bool Boxed => SiteType == "object?";

    public string Declaration => $"{Attributes}{(IsParams ? "params " : "")}{RefKind}{Type} {Name}";

    /// <summary>The declaration without <c>params</c>, for a helper the interceptor forwards to.</summary>
    public string ForwardedDeclaration => $"{Attributes}{RefKind}{Type} {Name}";

    public string Argument => RefKind switch
    {
        "ref readonly " => "in " + Name,
        _ => RefKind + Name,
    };
}

/// <summary>A type that contains a probe, as its partial declaration must be written. Equatable.</summary>
/// <param name="Keyword">"class", "struct", "record", "record struct" or "interface".</param>
/// <param name="Name">The type's name, with its type parameter list when it has one (<c>Box&lt;T&gt;</c>).</param>
internal sealed record ContainingTypeSpec(string Keyword, string Name);

/// <summary>A type parameter of an interceptor, with its constraints and attributes. Equatable.</summary>
internal sealed record TypeParameterSpec(string Name, string Constraints, string Attributes);

/// <summary>
/// A method as an interceptor must restate it: the called method at a call site, or a probed
/// method. Equatable; the pipeline caches on it.
/// </summary>
internal sealed record MethodShape
{
    public required string MethodName { get; init; }
    /// <summary>The containing type, fully qualified with its own type parameters (<c>global::Ns.IRepo&lt;T&gt;</c>).</summary>
    public required string ReceiverType { get; init; }
    public required string ReceiverRefKind { get; init; }
    public required bool IsStatic { get; init; }
    public required bool IsExtension { get; init; }
    public required EquatableArray<ParameterSpec> Parameters { get; init; }
    public required string ReturnType { get; init; }
    /// <summary>The containing types' type parameters, then the method's.</summary>
    public required EquatableArray<TypeParameterSpec> TypeParameters { get; init; }
    public required EquatableArray<string> MethodTypeArguments { get; init; }
    /// <summary>Attributes to copy onto the interceptor (trimming and AOT requirements, return nullability), one per entry.</summary>
    public required EquatableArray<string> Attributes { get; init; }

    public bool ReturnsValue => ReturnType != "void";

    /// <summary>The type parameters as a declaration writes them, with their attributes.</summary>
    public string TypeParameterList => TypeParameters.Count == 0 ? "" : "<" + string.Join(", ", System.Linq.Enumerable.Select(TypeParameters, t => t.Attributes + t.Name)) + ">";

    /// <summary>The type parameters as type arguments, for forwarding.</summary>
    public string TypeArgumentList => TypeParameters.Count == 0 ? "" : "<" + string.Join(", ", System.Linq.Enumerable.Select(TypeParameters, t => t.Name)) + ">";

    public string MethodTypeArgumentList => MethodTypeArguments.Count == 0 ? "" : "<" + string.Join(", ", MethodTypeArguments) + ">";
}

/// <summary>Everything the emitter needs to write one probe, or to fire it from another assembly. Equatable; the pipeline caches on it.</summary>
internal sealed record ProbeSpec
{
    public required string Id { get; init; }
    public required string Provider { get; init; }
    public required string Name { get; init; }
    public required ProbeShape Shape { get; init; }
    /// <summary>The method's documentation-comment id: how other assemblies find its one site.</summary>
    public required string MethodKey { get; init; }
    /// <summary>The assembly that declares the probe, and so holds its site.</summary>
    public required string AssemblyName { get; init; }
    public required string Namespace { get; init; }
    public required EquatableArray<ContainingTypeSpec> ContainingTypes { get; init; }
    public required string ContainingTypeKey { get; init; }
    public required string Modifiers { get; init; }
    public required MethodShape Method { get; init; }
    public required string? ReturnDisplay { get; init; }
    /// <summary>True when the method's return carries [return: ProbeRedact].</summary>
    public bool ReturnRedacted { get; init; }
    public required string ResultSiteType { get; init; }
    public required AsyncKind Async { get; init; }
    public required string File { get; init; }
    public required int Line { get; init; }
    public required LocationInfo? Location { get; init; }

    /// <summary>The method as diagnostics name it (<c>Config.Set&lt;T&gt;(string)</c>).</summary>
    public required string Display { get; init; }
    /// <summary>The method's metadata name (an explicit implementation's includes its interface).</summary>
    public required string MetadataName { get; init; }
    /// <summary>The simple names a call may use to reach this method (an explicit implementation's is its interface member's).</summary>
    public required EquatableArray<string> DispatchNames { get; init; }
    /// <summary>Keys of every member a call may name to reach this method: itself, what it overrides, what it implements.</summary>
    public required EquatableArray<string> DispatchKeys { get; init; }
    /// <summary>Keys of the declaring type's definition (first), its base classes and its interfaces.</summary>
    public required EquatableArray<string> AncestorKeys { get; init; }
    /// <summary>A derived type can override the method, so a virtual call may go elsewhere.</summary>
    public required bool Overridable { get; init; }
    /// <summary>The declaring type cannot be derived from (sealed, or a struct).</summary>
    public required bool ContainingSealed { get; init; }
    /// <summary>The declaring type as an unbound <c>typeof</c> operand (<c>global::Ns.Box&lt;&gt;</c>).</summary>
    public required string ContainingTypeOf { get; init; }
    /// <summary>The declaring type for an exact type test, when it is not generic and the compiling assembly can name it; else null.</summary>
    public required string? ContainingExactType { get; init; }
    /// <summary>The declaring type is an interface (a default interface method).</summary>
    public required bool ContainingIsInterface { get; init; }

    /// <summary>The field of the generated sites class that holds this probe's site.</summary>
    public string SiteField => "P_" + Sanitize(Id) + "_" + (uint)StableHash(MethodKey);

    public string ArgsType => Method.Parameters.Count == 0
        ? "global::ProbeGen.ProbeArgs"
        : "global::ProbeGen.ProbeArgs<" + string.Join(", ", System.Linq.Enumerable.Select(Method.Parameters, p => p.SiteType)) + ">";

    public string SiteType => Shape == ProbeShape.Static
        ? $"global::ProbeGen.StaticProbeSite<{ArgsType}>"
        : $"global::ProbeGen.MethodProbeSite<{ArgsType}, {ResultSiteType}>";

    internal static string Sanitize(string text)
    {
        var chars = text.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
            if (!char.IsLetterOrDigit(chars[i]))
                chars[i] = '_';
        return new string(chars);
    }

    /// <summary>FNV-1a: stable across processes, unlike string.GetHashCode.</summary>
    internal static int StableHash(string text)
    {
        unchecked
        {
            uint hash = 2166136261;
            foreach (char c in text)
                hash = (hash ^ c) * 16777619;
            return (int)hash;
        }
    }
}

/// <summary>
/// One call that an interceptor may replace: of a method probe, or of an interface or virtual
/// member that a method probe may implement. Equatable.
/// </summary>
/// <param name="Target">The called method, as the interceptor restates it.</param>
/// <param name="TargetKey">The called method's key (its assembly and documentation-comment id).</param>
/// <param name="ReceiverKeys">The static receiver type's definition key, then its base classes' keys; empty for a static call.</param>
/// <param name="IsVirtualCall">The call dispatches at run time (a virtual, abstract, override or interface member).</param>
internal sealed record CallSiteSpec(MethodShape Target, string TargetKey, EquatableArray<string> ReceiverKeys, bool IsVirtualCall,
    int Version, string Data, string Display);

/// <summary>A source location without a reference to the syntax tree, so models stay collectable.</summary>
internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
{
    public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

    public static LocationInfo From(Location location) =>
        new(location.SourceTree?.FilePath ?? "", location.SourceSpan, location.GetLineSpan().Span);
}

/// <summary>A diagnostic to report, with its descriptor, kept equatable for the pipeline.</summary>
internal sealed record DiagnosticInfo(DiagnosticDescriptor Descriptor, LocationInfo? Location, EquatableArray<StringValue> Arguments)
{
    public Diagnostic ToDiagnostic()
    {
        object[] args = new object[Arguments.Count];
        for (int i = 0; i < args.Length; i++)
            args[i] = Arguments[i].Value;
        return Diagnostic.Create(Descriptor, Location?.ToLocation(), args);
    }

    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, Location? location, params string[] arguments) =>
        new(descriptor, location is null ? null : LocationInfo.From(location),
            System.Linq.Enumerable.Select(arguments, a => new StringValue(a)).ToEquatableArray());
}

/// <summary>A string that <see cref="EquatableArray{T}"/> can hold.</summary>
internal readonly record struct StringValue(string Value);

/// <summary>What parsing one [Probe] method produced: a spec, or diagnostics and, for a static probe, a stub body.</summary>
internal sealed record ParseResult(ProbeSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics, StaticProbeStub? Stub = null);

/// <summary>
/// A body for a static probe the generator rejected, so the compiler reports only the generator's
/// error and not also its own for a partial method without an implementation. Equatable.
/// </summary>
internal sealed record StaticProbeStub(string HintName, string Namespace, EquatableArray<ContainingTypeSpec> ContainingTypes, string Modifiers, MethodShape Method);

/// <summary>Where an interceptor applies: one call, as <c>InterceptsLocation</c> names it. Equatable.</summary>
internal sealed record CallLocation(int Version, string Data, string Display);

/// <summary>A method probe an intercepted call may reach. Equatable.</summary>
/// <param name="Probe">The probe.</param>
/// <param name="Own">Declared in the compiling assembly (its site is a field here), else found at run time by method key.</param>
/// <param name="NeedsCheck">The call dispatches at run time, so each hit first checks that it reaches this probe.</param>
internal sealed record CandidateSpec(ProbeSpec Probe, bool Own, bool NeedsCheck);

/// <summary>One interceptor: a called method, the probes its calls may reach, and the calls it replaces. Equatable.</summary>
internal sealed record InterceptorSpec(string Name, MethodShape Target, EquatableArray<CandidateSpec> Candidates, EquatableArray<CallLocation> Locations);

/// <summary>The interceptors of the calls to one type's members, emitted as one file. Equatable.</summary>
internal sealed record InterceptorFile(string HintName, EquatableArray<InterceptorSpec> Interceptors);

/// <summary>How many intercepted calls here reach one method probe, for the catalog. Equatable.</summary>
internal sealed record CallSiteCount(string DeclaringAssembly, string MethodKey, int Count);

/// <summary>Everything the compiling assembly intercepts. Equatable.</summary>
internal sealed record InterceptionPlan(EquatableArray<InterceptorFile> Files, EquatableArray<CallSiteCount> Counts);

/// <summary>One probed type's probes, emitted as one file. Equatable.</summary>
internal sealed record ProbedType(string Key, EquatableArray<ProbeSpec> Probes);
