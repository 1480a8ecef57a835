using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace ProbeGen.Generator;

/// <summary>Turns [Probe] method symbols and their call sites into specs and diagnostics.</summary>
internal static class Parser
{
    public const string ProbeAttributeName = "ProbeGen.ProbeAttribute";
    public const string ProviderAttributeName = "ProbeGen.ProbeProviderAttribute";
    private const int MaxParameters = 8;

    private static readonly SymbolDisplayFormat FullyQualified = SymbolDisplayFormat.FullyQualifiedFormat
        .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    private static readonly SymbolDisplayFormat Display = SymbolDisplayFormat.CSharpErrorMessageFormat
        .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    /// <summary>Parses one method that carries [Probe].</summary>
    public static ParseResult ParseProbe(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var method = (IMethodSymbol)context.TargetSymbol;
        // [Probe] on a partial implementation: judge the declaration, as callers bind to it.
        method = method.PartialDefinitionPart ?? method;
        var syntax = (MethodDeclarationSyntax)context.TargetNode;
        var diagnostics = new List<DiagnosticInfo>();
        Location location = syntax.Identifier.GetLocation();
        string display = method.ToDisplayString(SymbolDisplayFormat.CSharpShortErrorMessageFormat);
        Compilation compilation = context.SemanticModel.Compilation;

        AttributeData attribute = context.Attributes[0];
        string name = method.Name;
        string? provider = null;
        if (attribute.ConstructorArguments.Length == 1 && attribute.ConstructorArguments[0].Value is string ctorName)
            name = ctorName;
        foreach (KeyValuePair<string, TypedConstant> named in attribute.NamedArguments)
        {
            if (named.Key == "Name" && named.Value.Value is string n)
                name = n;
            else if (named.Key == "Provider" && named.Value.Value is string p)
                provider = p;
        }
        provider ??= ProviderOf(method.ContainingType);
        if (!IsValidIdPart(provider))
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidProbeId, location, "provider", provider));
        if (!IsValidIdPart(name))
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidProbeId, location, "name", name));

        // A partial definition without an implementation is a static probe; anything with a body a method probe.
        bool isPartialDefinition = method.IsPartialDefinition;
        ProbeShape shape = isPartialDefinition ? ProbeShape.Static : ProbeShape.Method;
        if (isPartialDefinition && method.PartialImplementationPart is not null && !IsGeneratedByUs(method.PartialImplementationPart))
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.StaticProbeHasBody, location, display));
        if (!isPartialDefinition && syntax.Body is null && syntax.ExpressionBody is null)
        {
            if (method.IsAbstract || method.IsExtern || method.ContainingType.TypeKind == TypeKind.Interface)
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedMethodProbe, location, display,
                    method.IsExtern ? "extern" : "abstract", "only a method with a body can be a method probe; probe its implementations instead"));
            else
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.StaticProbeNotPartial, location, display));
            return new ParseResult(null, diagnostics.ToEquatableArray());
        }

        if (shape == ProbeShape.Static)
        {
            if (!method.ReturnsVoid)
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.StaticProbeReturnsValue, location, display, method.ReturnType.ToDisplayString(Display)));
            if (method.IsGenericMethod || IsInGenericType(method.ContainingType))
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.GenericStaticProbe, location, display));
        }
        else
        {
            if (method.MethodKind != MethodKind.Ordinary)
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedMethodProbe, location, display,
                    "not an ordinary method", "only ordinary methods can be intercepted; move the work into a method"));
            if (method.ReturnsByRef || method.ReturnsByRefReadonly)
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedMethodProbe, location, display,
                    "a ref-returning method", "return by value, or probe a method that does"));
            else if (method.ReturnType.IsRefLikeType)
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedMethodProbe, location, display,
                    $"returning the ref struct '{method.ReturnType.ToDisplayString(Display)}'", "a probe cannot keep a ref struct; return a regular type"));
            if (!compilation.IsSymbolAccessibleWithin(method, compilation.Assembly))
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InaccessibleToGeneratedCode, location, display, method.Name));
        }

        if (method.Parameters.Length > MaxParameters)
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.TooManyParameters, location, display, method.Parameters.Length.ToString()));

        var parameters = new List<ParameterSpec>();
        foreach (IParameterSymbol parameter in method.Parameters)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Location at = parameter.Locations.FirstOrDefault() ?? location;
            string? problem = null, fix = null;
            if (parameter.Type.IsRefLikeType)
                (problem, fix) = ($"the ref struct '{parameter.Type.ToDisplayString(Display)}'", "a probe cannot keep a ref struct; pass an array, a string or a copy");
            else if (parameter.Type.TypeKind is TypeKind.Pointer or TypeKind.FunctionPointer)
                (problem, fix) = ("a pointer", "pass an nint or a managed type");
            else if (shape == ProbeShape.Static && parameter.RefKind is RefKind.Ref or RefKind.Out)
                (problem, fix) = ($"a '{(parameter.RefKind == RefKind.Out ? "out" : "ref")}' parameter", "a static probe only reports values; pass it by value or with 'in'");
            if (problem is not null)
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedParameter, at, parameter.Name, display, problem, fix!));
            else if (!IsAccessible(compilation, parameter.Type))
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InaccessibleToGeneratedCode, at, display, parameter.Type.ToDisplayString(Display)));
            bool dependsOnTypeParameter = ContainsTypeParameter(parameter.Type);
            string type = parameter.Type.ToDisplayString(FullyQualified);
            parameters.Add(new ParameterSpec(
                Name: EscapeIdentifier(parameter.Name),
                DeclaredName: parameter.Name,
                Type: type,
                DisplayType: parameter.Type.ToDisplayString(Display),
                SiteType: dependsOnTypeParameter ? "object?" : type,
                RefKind: parameter.RefKind switch
                {
                    RefKind.Ref => "ref ",
                    RefKind.Out => "out ",
                    RefKind.In => "in ",
                    RefKind.RefReadOnlyParameter => "ref readonly ",
                    _ => "",
                },
                IsParams: parameter.IsParams));
        }

        if (!method.ReturnsVoid && !IsAccessible(compilation, method.ReturnType))
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InaccessibleToGeneratedCode, location, display, method.ReturnType.ToDisplayString(Display)));

        if (diagnostics.Count > 0)
            return new ParseResult(null, diagnostics.ToEquatableArray());

        (AsyncKind async, ITypeSymbol? result) = Awaited(method.ReturnType, compilation);
        string resultSiteType = result is null ? "global::ProbeGen.NoResult"
            : ContainsTypeParameter(result) ? "object?"
            : result.ToDisplayString(FullyQualified);

        INamedTypeSymbol containing = method.ContainingType;
        var typeParameters = new List<TypeParameterSpec>();
        foreach (INamedTypeSymbol type in ContainingChain(containing))
            foreach (ITypeParameterSymbol tp in type.TypeParameters)
                typeParameters.Add(new TypeParameterSpec(tp.Name, Constraints(tp)));
        foreach (ITypeParameterSymbol tp in method.TypeParameters)
            typeParameters.Add(new TypeParameterSpec(tp.Name, Constraints(tp)));

        FileLinePositionSpan lineSpan = syntax.GetLocation().GetLineSpan();
        var spec = new ProbeSpec
        {
            Id = provider + ":" + name,
            Provider = provider,
            Name = name,
            Shape = shape,
            MethodName = EscapeIdentifier(method.Name),
            MethodKey = MethodKey(method),
            Namespace = method.ContainingNamespace.IsGlobalNamespace ? "" : method.ContainingNamespace.ToDisplayString(),
            ContainingTypes = ContainingChain(containing).Select(t => new ContainingTypeSpec(Keyword(t), t.Name)).ToEquatableArray(),
            ContainingTypeKey = ProbeSpec.Sanitize(containing.ToDisplayString()),
            ReceiverType = containing.ToDisplayString(FullyQualified),
            ReceiverRefKind = containing.IsValueType ? (method.IsReadOnly || containing.IsReadOnly ? "in " : "ref ") : "",
            Modifiers = string.Join(" ", syntax.Modifiers.Select(m => m.Text)),
            Parameters = parameters.ToEquatableArray(),
            ReturnType = method.ReturnsVoid ? "void" : method.ReturnType.ToDisplayString(FullyQualified),
            ReturnDisplay = result is null ? (method.ReturnsVoid ? null : method.ReturnType.ToDisplayString(Display)) : result.ToDisplayString(Display),
            ResultSiteType = resultSiteType,
            Async = async,
            IsStatic = method.IsStatic,
            IsExtension = method.IsExtensionMethod,
            TypeParameters = typeParameters.ToEquatableArray(),
            MethodTypeArguments = method.TypeParameters.Select(t => t.Name).ToEquatableArray(),
            File = lineSpan.Path,
            Line = lineSpan.StartLinePosition.Line + 1,
            Location = LocationInfo.From(location),
        };
        return new ParseResult(spec, EquatableArray<DiagnosticInfo>.Empty);
    }

    /// <summary>Cheap syntax filter for call sites: any invocation of a named method.</summary>
    public static bool IsCandidateCall(SyntaxNode node, CancellationToken _) =>
        node is InvocationExpressionSyntax { Expression: IdentifierNameSyntax or GenericNameSyntax or MemberAccessExpressionSyntax or MemberBindingExpressionSyntax };

    /// <summary>A call of a method probe that can be intercepted, or null.</summary>
    public static CallSiteSpec? ParseCallSite(GeneratorSyntaxContext context, CancellationToken cancellationToken)
    {
        var invocation = (InvocationExpressionSyntax)context.Node;
        if (context.SemanticModel.GetSymbolInfo(invocation, cancellationToken).Symbol is not IMethodSymbol called)
            return null;
        IMethodSymbol method = (called.ReducedFrom ?? called).OriginalDefinition;
        // Static probes are partial methods; their calls need no interceptor.
        if (method.IsPartialDefinition || method.PartialDefinitionPart is not null)
            return null;
        if (!HasProbeAttribute(method) || method.IsAbstract || method.IsExtern)
            return null;
        // base.M() is a non-virtual call; an interceptor would turn it into a virtual one.
        if (invocation.Expression is MemberAccessExpressionSyntax { Expression: BaseExpressionSyntax })
            return null;
        if (IsInExpressionTree(invocation, context.SemanticModel, cancellationToken))
            return null;
#pragma warning disable RSEXPERIMENTAL002 // GetInterceptableLocation is the supported way to address a call
        var location = context.SemanticModel.GetInterceptableLocation(invocation, cancellationToken);
#pragma warning restore RSEXPERIMENTAL002
        if (location is null)
            return null;
        return new CallSiteSpec(MethodKey(method), location.Version, location.Data, location.GetDisplayLocation());
    }

    internal static string MethodKey(IMethodSymbol method) =>
        method.OriginalDefinition.GetDocumentationCommentId() ?? method.OriginalDefinition.ToDisplayString();

    private static bool HasProbeAttribute(IMethodSymbol method)
    {
        foreach (AttributeData a in method.GetAttributes())
            if (a.AttributeClass?.ToDisplayString() == ProbeAttributeName)
                return true;
        return false;
    }

    private static bool IsInExpressionTree(SyntaxNode node, SemanticModel model, CancellationToken cancellationToken)
    {
        foreach (SyntaxNode ancestor in node.Ancestors())
        {
            if (ancestor is LambdaExpressionSyntax lambda &&
                model.GetTypeInfo(lambda, cancellationToken).ConvertedType is INamedTypeSymbol { Name: "Expression" or "Expression`1" } t &&
                t.ContainingNamespace.ToDisplayString() == "System.Linq.Expressions")
                return true;
            if (ancestor is MemberDeclarationSyntax)
                return false;
        }
        return false;
    }

    private static bool IsGeneratedByUs(IMethodSymbol implementation) =>
        implementation.DeclaringSyntaxReferences.Any(r => r.SyntaxTree.FilePath.EndsWith(".Probes.g.cs", System.StringComparison.Ordinal));

    private static string ProviderOf(INamedTypeSymbol type)
    {
        foreach (AttributeData a in type.GetAttributes())
            if (a.AttributeClass?.ToDisplayString() == ProviderAttributeName && a.ConstructorArguments.Length == 1 && a.ConstructorArguments[0].Value is string p)
                return p;
        return type.ToDisplayString();
    }

    internal static bool IsValidIdPart(string part) =>
        part.Length > 0 && part.All(c => c != ':' && c != '*' && c != '?' && !char.IsWhiteSpace(c) && !char.IsControl(c));

    private static bool IsInGenericType(INamedTypeSymbol? type)
    {
        for (; type is not null; type = type.ContainingType)
            if (type.IsGenericType)
                return true;
        return false;
    }

    private static IEnumerable<INamedTypeSymbol> ContainingChain(INamedTypeSymbol type)
    {
        var chain = new Stack<INamedTypeSymbol>();
        for (INamedTypeSymbol? t = type; t is not null; t = t.ContainingType)
            chain.Push(t);
        return chain;
    }

    private static string Keyword(INamedTypeSymbol type) => type switch
    {
        { IsRecord: true, IsValueType: true } => "record struct",
        { IsRecord: true } => "record",
        { TypeKind: TypeKind.Struct } => "struct",
        { TypeKind: TypeKind.Interface } => "interface",
        _ => "class",
    };

    private static bool IsAccessible(Compilation compilation, ITypeSymbol type) =>
        type is ITypeParameterSymbol || compilation.IsSymbolAccessibleWithin(type, compilation.Assembly);

    internal static bool ContainsTypeParameter(ITypeSymbol type) => type switch
    {
        ITypeParameterSymbol => true,
        IArrayTypeSymbol array => ContainsTypeParameter(array.ElementType),
        INamedTypeSymbol named => named.TypeArguments.Any(ContainsTypeParameter) || (named.ContainingType is { } outer && ContainsTypeParameter(outer)),
        _ => false,
    };

    private static (AsyncKind, ITypeSymbol?) Awaited(ITypeSymbol returnType, Compilation compilation)
    {
        if (returnType is not INamedTypeSymbol named)
            return (AsyncKind.None, returnType.SpecialType == SpecialType.System_Void ? null : returnType);
        string original = named.OriginalDefinition.ToDisplayString();
        return original switch
        {
            "System.Threading.Tasks.Task" => (AsyncKind.Task, null),
            "System.Threading.Tasks.Task<TResult>" => (AsyncKind.TaskOfT, named.TypeArguments[0]),
            "System.Threading.Tasks.ValueTask" => (AsyncKind.ValueTask, null),
            "System.Threading.Tasks.ValueTask<TResult>" => (AsyncKind.ValueTaskOfT, named.TypeArguments[0]),
            _ => (AsyncKind.None, returnType.SpecialType == SpecialType.System_Void ? null : returnType),
        };
    }

    private static string Constraints(ITypeParameterSymbol tp)
    {
        var parts = new List<string>();
        if (tp.HasReferenceTypeConstraint)
            parts.Add(tp.ReferenceTypeConstraintNullableAnnotation == NullableAnnotation.Annotated ? "class?" : "class");
        if (tp.HasUnmanagedTypeConstraint)
            parts.Add("unmanaged");
        else if (tp.HasValueTypeConstraint)
            parts.Add("struct");
        if (tp.HasNotNullConstraint)
            parts.Add("notnull");
        foreach (ITypeSymbol t in tp.ConstraintTypes)
            parts.Add(t.ToDisplayString(FullyQualified));
        if (tp.HasConstructorConstraint && !tp.HasValueTypeConstraint)
            parts.Add("new()");
        return parts.Count == 0 ? "" : $"where {tp.Name} : {string.Join(", ", parts)}";
    }

    private static string EscapeIdentifier(string name) =>
        SyntaxFacts.GetKeywordKind(name) != SyntaxKind.None ? "@" + name : name;

    /// <summary>Duplicate ids within the assembly: every probe after the first with an id is reported and dropped.</summary>
    public static (ImmutableArray<ProbeSpec> Unique, ImmutableArray<DiagnosticInfo> Diagnostics) RemoveDuplicates(ImmutableArray<ProbeSpec> probes)
    {
        var firstById = new Dictionary<string, ProbeSpec>();
        var unique = ImmutableArray.CreateBuilder<ProbeSpec>();
        var diagnostics = ImmutableArray.CreateBuilder<DiagnosticInfo>();
        foreach (ProbeSpec probe in probes.OrderBy(p => p.File, System.StringComparer.Ordinal).ThenBy(p => p.Line))
        {
            if (firstById.TryGetValue(probe.Id, out ProbeSpec? first))
            {
                diagnostics.Add(new DiagnosticInfo("PG0006", probe.Location,
                    new[] { new StringValue(probe.Id), new StringValue($"{first.ReceiverType.Replace("global::", "")}.{first.MethodName}") }.ToEquatableArray()));
                continue;
            }
            firstById[probe.Id] = probe;
            unique.Add(probe);
        }
        return (unique.ToImmutable(), diagnostics.ToImmutable());
    }
}
