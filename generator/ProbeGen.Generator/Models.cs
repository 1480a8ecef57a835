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

/// <summary>One parameter of a probe. Equatable; the pipeline caches on it.</summary>
/// <param name="Name">The identifier as it must be written (escaped with @ where needed).</param>
/// <param name="DeclaredName">The name as declared, for the catalog.</param>
/// <param name="Type">The fully qualified type, for signatures.</param>
/// <param name="DisplayType">The type as C# spells it, for the catalog.</param>
/// <param name="SiteType">The type the probe site records: <paramref name="Type"/>, or <c>object?</c> when it depends on a type parameter.</param>
/// <param name="RefKind">"", "ref ", "out ", "in " or "ref readonly ".</param>
/// <param name="IsParams">Declared with <c>params</c>.</param>
internal sealed record ParameterSpec(string Name, string DeclaredName, string Type, string DisplayType, string SiteType, string RefKind, bool IsParams)
{
    public bool Boxed => SiteType == "object?";

    /// <summary>The value the site records at entry: out parameters are not assigned yet.</summary>
    public string EntryValue => RefKind == "out " ? $"default({SiteType})" : Boxed ? $"(object?){Name}" : Name;

    /// <summary>The value the site records at return.</summary>
    public string ReturnValue => Boxed ? $"(object?){Name}" : Name;

    public string Declaration => $"{(IsParams ? "params " : "")}{RefKind}{Type} {Name}";

    public string Argument => RefKind switch
    {
        "ref readonly " => "in " + Name,
        _ => RefKind + Name,
    };
}

/// <summary>A type that contains a probe, as its partial declaration must be written. Equatable.</summary>
/// <param name="Keyword">"class", "struct", "record", "record struct" or "interface".</param>
/// <param name="Name">The type's name.</param>
internal sealed record ContainingTypeSpec(string Keyword, string Name);

/// <summary>A type parameter of a method probe's interceptor, with its constraints. Equatable.</summary>
internal sealed record TypeParameterSpec(string Name, string Constraints);

/// <summary>Everything the emitter needs to write one probe. Equatable; the pipeline caches on it.</summary>
internal sealed record ProbeSpec
{
    public required string Id { get; init; }
    public required string Provider { get; init; }
    public required string Name { get; init; }
    public required ProbeShape Shape { get; init; }
    public required string MethodName { get; init; }
    public required string MethodKey { get; init; }
    public required string Namespace { get; init; }
    public required EquatableArray<ContainingTypeSpec> ContainingTypes { get; init; }
    public required string ContainingTypeKey { get; init; }
    public required string ReceiverType { get; init; }
    public required string ReceiverRefKind { get; init; }
    public required string Modifiers { get; init; }
    public required EquatableArray<ParameterSpec> Parameters { get; init; }
    public required string ReturnType { get; init; }
    public required string? ReturnDisplay { get; init; }
    public required string ResultSiteType { get; init; }
    public required AsyncKind Async { get; init; }
    public required bool IsStatic { get; init; }
    public required bool IsExtension { get; init; }
    public required EquatableArray<TypeParameterSpec> TypeParameters { get; init; }
    public required EquatableArray<string> MethodTypeArguments { get; init; }
    public required string File { get; init; }
    public required int Line { get; init; }
    public required LocationInfo Location { get; init; }

    /// <summary>The field of the generated sites class that holds this probe's site.</summary>
    public string SiteField => "P_" + Sanitize(Id) + "_" + (uint)StableHash(MethodKey);

    public string ArgsType => Parameters.Count == 0
        ? "global::ProbeGen.ProbeArgs"
        : "global::ProbeGen.ProbeArgs<" + string.Join(", ", System.Linq.Enumerable.Select(Parameters, p => p.SiteType)) + ">";

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

/// <summary>One call site of a method probe that an interceptor will replace. Equatable.</summary>
internal sealed record CallSiteSpec(string MethodKey, int Version, string Data, string Display);

/// <summary>A source location without a reference to the syntax tree, so models stay collectable.</summary>
internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
{
    public Location ToLocation() => Location.Create(FilePath, Span, LineSpan);

    public static LocationInfo From(Location location) =>
        new(location.SourceTree?.FilePath ?? "", location.SourceSpan, location.GetLineSpan().Span);
}

/// <summary>A diagnostic to report, kept equatable for the pipeline.</summary>
internal sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<StringValue> Arguments)
{
    public Diagnostic ToDiagnostic()
    {
        DiagnosticDescriptor descriptor = Id switch
        {
            "PG0001" => DiagnosticDescriptors.StaticProbeNotPartial,
            "PG0002" => DiagnosticDescriptors.StaticProbeHasBody,
            "PG0003" => DiagnosticDescriptors.StaticProbeReturnsValue,
            "PG0004" => DiagnosticDescriptors.UnsupportedParameter,
            "PG0005" => DiagnosticDescriptors.TooManyParameters,
            "PG0006" => DiagnosticDescriptors.DuplicateProbeId,
            "PG0007" => DiagnosticDescriptors.InvalidProbeId,
            "PG0008" => DiagnosticDescriptors.GenericStaticProbe,
            "PG0009" => DiagnosticDescriptors.InaccessibleToGeneratedCode,
            _ => DiagnosticDescriptors.UnsupportedMethodProbe,
        };
        object[] args = new object[Arguments.Count];
        for (int i = 0; i < args.Length; i++)
            args[i] = Arguments[i].Value;
        return Diagnostic.Create(descriptor, Location?.ToLocation(), args);
    }

    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, Location? location, params string[] arguments) =>
        new(descriptor.Id, location is null ? null : LocationInfo.From(location),
            System.Linq.Enumerable.Select(arguments, a => new StringValue(a)).ToEquatableArray());
}

/// <summary>A string that <see cref="EquatableArray{T}"/> can hold.</summary>
internal readonly record struct StringValue(string Value);

/// <summary>What parsing one [Probe] method produced: a spec, diagnostics, or both.</summary>
internal sealed record ParseResult(ProbeSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics);
