using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;

namespace ProbeGen.Generator;

/// <summary>Turns [Probe] method symbols and their call sites into specs and diagnostics.</summary>
internal static class Parser
{
    public const string ProbeAttributeName = "ProbeGen.ProbeAttribute";
    public const string ProviderAttributeName = "ProbeGen.ProbeProviderAttribute";
    public const string GeneratedStaticProbeAttributeName = "ProbeGen.GeneratedStaticProbeAttribute";
    public const string RedactAttributeName = "ProbeGen.ProbeRedactAttribute";
    private const string RuntimeAssemblyName = "ProbeGen.Runtime";
    private const int MaxParameters = 8;

    private static readonly SymbolDisplayFormat FullyQualified = SymbolDisplayFormat.FullyQualifiedFormat
        .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    private static readonly SymbolDisplayFormat Display = SymbolDisplayFormat.CSharpErrorMessageFormat
        .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    /// <summary>Parameter types in an overload's default name: no '?' (a pattern wildcard), so <c>int?</c> reads <c>Nullable&lt;int&gt;</c>.</summary>
    private static readonly SymbolDisplayFormat OverloadName = SymbolDisplayFormat.MinimallyQualifiedFormat
        .WithMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.UseSpecialTypes | SymbolDisplayMiscellaneousOptions.ExpandNullable
            | SymbolDisplayMiscellaneousOptions.ExpandValueTuple);

    /// <summary>Attributes that change what the compiler checks at a call site; an interceptor must restate them.</summary>
    private static readonly HashSet<string> CopiedParameterAttributes =
    [
        "System.Diagnostics.CodeAnalysis.AllowNullAttribute", "System.Diagnostics.CodeAnalysis.DisallowNullAttribute",
        "System.Diagnostics.CodeAnalysis.MaybeNullAttribute", "System.Diagnostics.CodeAnalysis.NotNullAttribute",
        "System.Diagnostics.CodeAnalysis.MaybeNullWhenAttribute", "System.Diagnostics.CodeAnalysis.NotNullWhenAttribute",
        "System.Diagnostics.CodeAnalysis.NotNullIfNotNullAttribute", "System.Diagnostics.CodeAnalysis.DoesNotReturnIfAttribute",
        "System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembersAttribute",
    ];

    private static readonly HashSet<string> CopiedMethodAttributes =
    [
        "System.Diagnostics.CodeAnalysis.RequiresUnreferencedCodeAttribute", "System.Diagnostics.CodeAnalysis.RequiresDynamicCodeAttribute",
        "System.Diagnostics.CodeAnalysis.RequiresAssemblyFilesAttribute", "System.Diagnostics.CodeAnalysis.ExperimentalAttribute",
    ];

    private static readonly HashSet<string> CopiedReturnAttributes =
    [
        "System.Diagnostics.CodeAnalysis.MaybeNullAttribute", "System.Diagnostics.CodeAnalysis.NotNullAttribute",
        "System.Diagnostics.CodeAnalysis.NotNullIfNotNullAttribute", "System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembersAttribute",
    ];

    /// <summary>The syntax [Probe] may sit on: methods, and the members it cannot probe, so those are reported rather than ignored.</summary>
    public static bool IsProbeTarget(SyntaxNode node, CancellationToken _) =>
        node is MethodDeclarationSyntax or AccessorDeclarationSyntax or OperatorDeclarationSyntax
            or ConversionOperatorDeclarationSyntax or LocalFunctionStatementSyntax;

    /// <summary>Parses one member that carries [Probe].</summary>
    public static ParseResult ParseProbe(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var method = (IMethodSymbol)context.TargetSymbol;
        string display = method.ToDisplayString(SymbolDisplayFormat.CSharpShortErrorMessageFormat);
        if (context.TargetNode is not MethodDeclarationSyntax syntax)
        {
            Location at = context.TargetNode switch
            {
                AccessorDeclarationSyntax a => a.Keyword.GetLocation(),
                OperatorDeclarationSyntax o => o.OperatorToken.GetLocation(),
                ConversionOperatorDeclarationSyntax c => c.Type.GetLocation(),
                LocalFunctionStatementSyntax l => l.Identifier.GetLocation(),
                _ => context.TargetNode.GetLocation(),
            };
            (string what, string fix) = context.TargetNode switch
            {
                AccessorDeclarationSyntax => ("a property or indexer accessor", "no call site invokes an accessor by name; probe a method the accessor calls"),
                LocalFunctionStatementSyntax => ("a local function", "its calls cannot be intercepted from outside the method; make it a private method of the type"),
                _ => ("an operator", "operators are not invocations an interceptor can replace; probe a method the operator calls"),
            };
            return Failed(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedMethodProbe, at, display, what, fix));
        }

        // [Probe] on a partial implementation: judge the declaration, as callers bind to it.
        method = method.PartialDefinitionPart ?? method;
        KnownSymbols known = KnownSymbols.For(context.SemanticModel.Compilation);
        var diagnostics = new List<DiagnosticInfo>();
        Location location = syntax.Identifier.GetLocation();

        if (syntax.Parent is TypeDeclarationSyntax { Keyword.Text: "extension" })
            return Failed(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedMethodProbe, location, display,
                "a member of an extension block", "declare it as a classic extension method, 'static R M(this T x)', which can be probed"));

        // A partial definition without an implementation is a static probe; anything with a body a method probe.
        bool isPartialDefinition = method.IsPartialDefinition;
        if (isPartialDefinition && method.PartialImplementationPart is not null && !IsGeneratedByUs(method.PartialImplementationPart))
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.StaticProbeHasBody, location, display));
        if (!isPartialDefinition && syntax.Body is null && syntax.ExpressionBody is null)
        {
            if (method.IsAbstract || method.IsExtern || method.ContainingType.TypeKind == TypeKind.Interface)
                return Failed(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedMethodProbe, location, display,
                    method.IsExtern ? "extern" : "abstract", "only a method with a body can be a method probe; probe its implementations instead"));
            return Failed(DiagnosticInfo.Create(DiagnosticDescriptors.StaticProbeNotPartial, location, display));
        }

        ProbeSpec? spec = Describe(method, context.Attributes[0], known, location, diagnostics, cancellationToken);
        if (diagnostics.Count == 0)
            return new ParseResult(spec, EquatableArray<DiagnosticInfo>.Empty);
        StaticProbeStub? stub = isPartialDefinition && method.PartialImplementationPart is null
            ? new StaticProbeStub(ProbeSpec.Sanitize(method.ContainingType.ToDisplayString()) + "." + ProbeSpec.Sanitize(method.Name) + "_" + (uint)ProbeSpec.StableHash(Key(method)) + ".Stub.g.cs",
                method.ContainingNamespace.IsGlobalNamespace ? "" : method.ContainingNamespace.ToDisplayString(),
                ContainingChain(method.ContainingType).Select(t => new ContainingTypeSpec(Keyword(t), TypeName(t))).ToEquatableArray(),
                string.Join(" ", syntax.Modifiers.Select(m => m.Text)), Shape(method))
            : null;
        return new ParseResult(null, diagnostics.ToEquatableArray(), stub);
    }

    private static ParseResult Failed(DiagnosticInfo diagnostic) => new(null, new[] { diagnostic }.ToEquatableArray());

    /// <summary>
    /// The spec of a probed method, from its symbol alone: for this compilation's probes (with
    /// <paramref name="diagnostics"/>), and for probes of referenced assemblies, which interceptors
    /// here fire (without: their own build reported them).
    /// </summary>
    public static ProbeSpec? Describe(IMethodSymbol method, AttributeData attribute, KnownSymbols known, Location? location,
        List<DiagnosticInfo>? diagnostics, CancellationToken cancellationToken)
    {
        Compilation compilation = known.Compilation;
        bool own = SymbolEqualityComparer.Default.Equals(method.ContainingAssembly, compilation.Assembly);
        string display = method.ToDisplayString(SymbolDisplayFormat.CSharpShortErrorMessageFormat);
        int errors = 0;
        void Report(DiagnosticDescriptor descriptor, Location? at, params string[] args)
        {
            errors++;
            diagnostics?.Add(DiagnosticInfo.Create(descriptor, at, args));
        }

        (string name, string provider) = IdOf(method, attribute, known);
        if (!IsValidIdPart(provider))
            Report(DiagnosticDescriptors.InvalidProbeId, location, "provider", provider);
        if (!IsValidIdPart(name))
            Report(DiagnosticDescriptors.InvalidProbeId, location, "name", name);

        bool isStatic = own && method.IsPartialDefinition;
        ProbeShape shape = isStatic ? ProbeShape.Static : ProbeShape.Method;
        bool isExplicit = method.ExplicitInterfaceImplementations.Length > 0;

        if (shape == ProbeShape.Static)
        {
            if (!method.ReturnsVoid)
                Report(DiagnosticDescriptors.StaticProbeReturnsValue, location, display, method.ReturnType.ToDisplayString(Display));
            if (method.IsGenericMethod || IsInGenericType(method.ContainingType))
                Report(DiagnosticDescriptors.GenericStaticProbe, location, display);
        }
        else
        {
            if (method.MethodKind is not (MethodKind.Ordinary or MethodKind.ExplicitInterfaceImplementation))
                Report(DiagnosticDescriptors.UnsupportedMethodProbe, location, display,
                    "not an ordinary method", "only ordinary methods can be intercepted; move the work into a method");
            if (method.ReturnsByRef || method.ReturnsByRefReadonly)
                Report(DiagnosticDescriptors.UnsupportedMethodProbe, location, display,
                    "a ref-returning method", "return by value, or probe a method that does");
            else if (method.ReturnType.IsRefLikeType)
                Report(DiagnosticDescriptors.UnsupportedMethodProbe, location, display,
                    $"returning the ref struct '{method.ReturnType.ToDisplayString(Display)}'", "a probe cannot keep a ref struct; return a regular type");
            // An explicit implementation is only ever called through its interface: the interceptor names the type, not the method.
            ISymbol mustReach = isExplicit ? method.ContainingType : method;
            if (own && Inaccessible(compilation, mustReach) is { } why)
                Report(DiagnosticDescriptors.InaccessibleToGeneratedCode, location, display, mustReach.Name, why);
        }

        if (method.Parameters.Length > MaxParameters)
            Report(DiagnosticDescriptors.TooManyParameters, location, display, method.Parameters.Length.ToString());

        foreach (IParameterSymbol parameter in method.Parameters)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Location? at = parameter.Locations.FirstOrDefault() ?? location;
            string? problem = null, fix = null;
            if (parameter.Type.IsRefLikeType)
                (problem, fix) = ($"the ref struct '{parameter.Type.ToDisplayString(Display)}'", "a probe cannot keep a ref struct; pass an array, a string or a copy");
            else if (parameter.Type.TypeKind is TypeKind.Pointer or TypeKind.FunctionPointer)
                (problem, fix) = ("a pointer", "pass an nint or a managed type");
            else if (shape == ProbeShape.Static && parameter.RefKind is RefKind.Ref or RefKind.Out)
                (problem, fix) = ($"a '{(parameter.RefKind == RefKind.Out ? "out" : "ref")}' parameter", "a static probe only reports values; pass it by value or with 'in'");
            if (problem is not null)
                Report(DiagnosticDescriptors.UnsupportedParameter, at, parameter.Name, display, problem, fix!);
            else if (Inaccessible(compilation, parameter.Type) is { } why)
                Report(DiagnosticDescriptors.InaccessibleToGeneratedCode, at, display, parameter.Type.ToDisplayString(Display), why);
        }

        if (!method.ReturnsVoid && Inaccessible(compilation, method.ReturnType) is { } returnWhy)
            Report(DiagnosticDescriptors.InaccessibleToGeneratedCode, location, display, method.ReturnType.ToDisplayString(Display), returnWhy);

        if (errors > 0)
            return null;

        (AsyncKind async, ITypeSymbol? result) = Awaited(method.ReturnType, known);
        string resultSiteType = result is null ? "global::ProbeGen.NoResult"
            : ContainsTypeParameter(result) ? "object?"
            : result.ToDisplayString(FullyQualified);

        INamedTypeSymbol containing = method.ContainingType;
        FileLinePositionSpan lineSpan = method.DeclaringSyntaxReferences.FirstOrDefault() is { } reference
            ? reference.GetSyntax(cancellationToken).GetLocation().GetLineSpan() : default;
        return new ProbeSpec
        {
            Id = provider + ":" + name,
            Provider = provider,
            Name = name,
            Shape = shape,
            MethodKey = DocumentationId(method),
            AssemblyName = method.ContainingAssembly.Name,
            Namespace = containing.ContainingNamespace.IsGlobalNamespace ? "" : containing.ContainingNamespace.ToDisplayString(),
            ContainingTypes = ContainingChain(containing).Select(t => new ContainingTypeSpec(Keyword(t), TypeName(t))).ToEquatableArray(),
            ContainingTypeKey = ProbeSpec.Sanitize(containing.ToDisplayString()),
            Modifiers = own && method.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(cancellationToken) is MethodDeclarationSyntax declaration
                ? string.Join(" ", declaration.Modifiers.Select(m => m.Text)) : "",
            Method = Shape(method),
            ReturnDisplay = result is null ? (method.ReturnsVoid ? null : method.ReturnType.ToDisplayString(Display)) : result.ToDisplayString(Display),
            ResultSiteType = resultSiteType,
            Async = async,
            File = lineSpan.Path ?? "",
            Line = lineSpan.Path is null ? 0 : lineSpan.StartLinePosition.Line + 1,
            Location = location is null ? null : LocationInfo.From(location),
            MetadataName = method.MetadataName,
            ReturnRedacted = Redaction(method.GetReturnTypeAttributes()) == true,
            Display = display,
            DispatchNames = DispatchNames(method).ToEquatableArray(),
            DispatchKeys = DispatchKeys(method).ToEquatableArray(),
            AncestorKeys = AncestorKeys(containing).ToEquatableArray(),
            Overridable = (method.IsVirtual || method.IsOverride || method.IsAbstract || containing.TypeKind == TypeKind.Interface)
                && !method.IsSealed && !containing.IsSealed && !containing.IsValueType,
            ContainingSealed = containing.IsSealed || containing.IsValueType,
            ContainingTypeOf = UnboundTypeOf(containing),
            ContainingExactType = !IsInGenericType(containing) && Inaccessible(compilation, containing) is null ? containing.ToDisplayString(FullyQualified) : null,
            ContainingIsInterface = containing.TypeKind == TypeKind.Interface,
        };
    }

    /// <summary>The probe's provider and name; overloads that share a default name each get their parameter list, so none needs a hand-written name.</summary>
    private static (string Name, string Provider) IdOf(IMethodSymbol method, AttributeData attribute, KnownSymbols known)
    {
        (string? name, string? provider) = AttributeNames(attribute);
        provider ??= ProviderOf(method.ContainingType, known);
        if (name is not null)
            return (name, provider);
        name = DefaultName(method);
        int sharing = 0;
        foreach (ISymbol member in method.ContainingType.GetMembers())
        {
            // A partial method's implementation part is the same method as its definition: count it once.
            if (member is not IMethodSymbol other || other.PartialDefinitionPart is not null)
                continue;
            if (DefaultName(other) != name || known.ProbeAttributeOf(other) is not { } otherAttribute)
                continue;
            (string? otherName, string? otherProvider) = AttributeNames(otherAttribute);
            if (otherName is null && (otherProvider ?? ProviderOf(other.ContainingType, known)) == provider)
                sharing++;
        }
        // Overloads can differ in their generic arity alone: the type parameters are part of the name.
        if (sharing > 1)
            name += (method.TypeParameters.Length == 0 ? "" : "<" + string.Join(",", method.TypeParameters.Select(t => t.Name)) + ">")
                + "(" + string.Join(",", method.Parameters.Select(p =>
                p.Type.ToDisplayString(OverloadName).Replace(" ", "") + (p.RefKind is RefKind.None ? "" : "&"))) + ")";
        return (name, provider);
    }

    private static (string? Name, string? Provider) AttributeNames(AttributeData attribute)
    {
        string? name = null, provider = null;
        if (attribute.ConstructorArguments.Length == 1 && attribute.ConstructorArguments[0].Value is string ctorName)
            name = ctorName;
        foreach (KeyValuePair<string, TypedConstant> named in attribute.NamedArguments)
        {
            if (named.Key == "Name" && named.Value.Value is string n)
                name = n;
            else if (named.Key == "Provider" && named.Value.Value is string p)
                provider = p;
        }
        return (name, provider);
    }

    private static string DefaultName(IMethodSymbol method) =>
        method.ExplicitInterfaceImplementations.FirstOrDefault() is { } implemented
            ? implemented.ContainingType.Name + "." + implemented.Name
            : method.Name;

    /// <summary>The method as an interceptor restates it.</summary>
    public static MethodShape Shape(IMethodSymbol method)
    {
        INamedTypeSymbol containing = method.ContainingType;
        var typeParameters = new List<TypeParameterSpec>();
        foreach (INamedTypeSymbol type in ContainingChain(containing))
            foreach (ITypeParameterSymbol tp in type.TypeParameters)
                typeParameters.Add(new TypeParameterSpec(tp.Name, Constraints(tp), Attributes(tp.GetAttributes(), CopiedParameterAttributes)));
        foreach (ITypeParameterSymbol tp in method.TypeParameters)
            typeParameters.Add(new TypeParameterSpec(tp.Name, Constraints(tp), Attributes(tp.GetAttributes(), CopiedParameterAttributes)));

        var attributes = new List<string>();
        foreach (AttributeData a in method.GetAttributes())
            if (a.AttributeClass is { } c && CopiedMethodAttributes.Contains(c.ToDisplayString()))
                attributes.Add("[" + Render(a) + "]");
        foreach (AttributeData a in method.GetReturnTypeAttributes())
            if (a.AttributeClass is { } c && CopiedReturnAttributes.Contains(c.ToDisplayString()))
                attributes.Add("[return: " + Render(a) + "]");

        return new MethodShape
        {
            MethodName = EscapeIdentifier(method.Name),
            ReceiverType = containing.ToDisplayString(FullyQualified),
            ReceiverRefKind = containing.IsValueType ? (method.IsReadOnly || containing.IsReadOnly ? "in " : "ref ") : "",
            IsStatic = method.IsStatic,
            IsExtension = method.IsExtensionMethod,
            Parameters = method.Parameters.Select(Parameter).ToEquatableArray(),
            ReturnType = method.ReturnsVoid ? "void" : method.ReturnType.ToDisplayString(FullyQualified),
            TypeParameters = typeParameters.ToEquatableArray(),
            MethodTypeArguments = method.TypeParameters.Select(t => t.Name).ToEquatableArray(),
            Attributes = attributes.ToEquatableArray(),
        };
    }

    private static ParameterSpec Parameter(IParameterSymbol parameter)
    {
        bool recordable = !(parameter.Type is ITypeParameterSymbol tp && AllowsRefLike(tp));
        string type = parameter.Type.ToDisplayString(FullyQualified);
        string refKind = parameter.RefKind switch
        {
            RefKind.Ref => "ref ",
            RefKind.Out => "out ",
            RefKind.In => "in ",
            RefKind.RefReadOnlyParameter => "ref readonly ",
            _ => "",
        };
        if (parameter.ScopedKind == ScopedKind.ScopedRef && parameter.RefKind != RefKind.Out)
            refKind = "scoped " + refKind;
        return new ParameterSpec(
            Name: EscapeIdentifier(parameter.Name),
            DeclaredName: parameter.Name,
            Type: type,
            DisplayType: parameter.Type.ToDisplayString(Display),
            SiteType: !recordable || ContainsTypeParameter(parameter.Type) ? "object?" : type,
            RefKind: refKind,
            IsParams: parameter.IsParams,
            Attributes: Attributes(parameter.GetAttributes(), CopiedParameterAttributes),
            MetadataType: MetadataTypeName(parameter.Type) + (parameter.RefKind == RefKind.None ? "" : "&"),
            Recordable: recordable,
            Redact: Redaction(parameter.GetAttributes()) switch { true => "Always", false => "Never", null => "" });
    }

    /// <summary>What a [ProbeRedact] among <paramref name="attributes"/> asks for: redact, allow, or nothing said.</summary>
    internal static bool? Redaction(ImmutableArray<AttributeData> attributes)
    {
        foreach (AttributeData attribute in attributes)
        {
            if (attribute.AttributeClass?.ToDisplayString() != RedactAttributeName)
                continue;
            return attribute.ConstructorArguments.Length == 1 && attribute.ConstructorArguments[0].Value is bool redact ? redact : true;
        }
        return null;
    }

    private static string MetadataTypeName(ITypeSymbol type) => type switch
    {
        IArrayTypeSymbol array => MetadataTypeName(array.ElementType) + (array.Rank == 1 ? "[]" : "[" + new string(',', array.Rank - 1) + "]"),
        IPointerTypeSymbol pointer => MetadataTypeName(pointer.PointedAtType) + "*",
        _ => type.MetadataName,
    };

    private static string Attributes(ImmutableArray<AttributeData> attributes, HashSet<string> copied)
    {
        string result = "";
        foreach (AttributeData a in attributes)
            if (a.AttributeClass is { } c && copied.Contains(c.ToDisplayString()))
                result += "[" + Render(a) + "] ";
        return result;
    }

    private static string Render(AttributeData attribute)
    {
        var arguments = attribute.ConstructorArguments.Select(a => a.ToCSharpString())
            .Concat(attribute.NamedArguments.Select(n => n.Key + " = " + n.Value.ToCSharpString()));
        return attribute.AttributeClass!.ToDisplayString(FullyQualified) + "(" + string.Join(", ", arguments) + ")";
    }

    /// <summary>Cheap syntax filter for call sites: any invocation of a named method.</summary>
    public static bool IsCandidateCall(SyntaxNode node, CancellationToken _) =>
        node is InvocationExpressionSyntax { Expression: IdentifierNameSyntax or GenericNameSyntax or MemberAccessExpressionSyntax or MemberBindingExpressionSyntax };

    /// <summary>The simple name an invocation calls, read from syntax alone (no binding).</summary>
    public static string InvokedName(SyntaxNode node) => ((InvocationExpressionSyntax)node).Expression switch
    {
        IdentifierNameSyntax identifier => identifier.Identifier.ValueText,
        GenericNameSyntax generic => generic.Identifier.ValueText,
        MemberAccessExpressionSyntax member => member.Name.Identifier.ValueText,
        MemberBindingExpressionSyntax binding => binding.Name.Identifier.ValueText,
        _ => "",
    };

    /// <summary>
    /// The simple names a call may use to reach a method probe: the probe's own, and the names of
    /// the members it implements or overrides. Only invocations of these names are ever bound,
    /// which keeps the generator's cost proportional to the probes' calls, not to all calls.
    /// </summary>
    public static EquatableArray<string> CallNames(ImmutableArray<ProbeSpec> own, EquatableArray<ProbeSpec> referenced) =>
        own.Where(p => p.Shape == ProbeShape.Method).Concat(referenced)
            .SelectMany(p => p.DispatchNames)
            .Distinct()
            .OrderBy(n => n, System.StringComparer.Ordinal)
            .ToEquatableArray();

    /// <summary>
    /// Binds the invocations that may reach a probe (by name), one semantic model per syntax tree.
    /// </summary>
    public static EquatableArray<CallSiteSpec> ParseCallSites(ImmutableArray<InvocationExpressionSyntax> invocations, Compilation compilation, CancellationToken cancellationToken)
    {
        var result = new List<CallSiteSpec>();
        foreach (var byTree in invocations.GroupBy(i => i.SyntaxTree))
        {
            if (!compilation.ContainsSyntaxTree(byTree.Key))
                continue;
            SemanticModel model = compilation.GetSemanticModel(byTree.Key);
            foreach (InvocationExpressionSyntax invocation in byTree)
                if (ParseCallSite(invocation, model, cancellationToken) is { } call)
                    result.Add(call);
        }
        return result.ToEquatableArray();
    }

    /// <summary>
    /// A call that an interceptor may replace, or null: a call of a method probe, or of an
    /// interface or virtual member (matched against the probes later, once they are all known).
    /// </summary>
    private static CallSiteSpec? ParseCallSite(InvocationExpressionSyntax invocation, SemanticModel semanticModel, CancellationToken cancellationToken)
    {
        if (semanticModel.GetSymbolInfo(invocation, cancellationToken).Symbol is not IMethodSymbol called)
            return null;
        IMethodSymbol method = (called.ReducedFrom ?? called).OriginalDefinition;
        // Static probes are partial methods; their calls need no interceptor.
        if (method.IsPartialDefinition || method.PartialDefinitionPart is not null)
            return null;
        KnownSymbols known = KnownSymbols.For(semanticModel.Compilation);
        bool isVirtual = !method.IsStatic && (method.IsVirtual || method.IsAbstract || method.IsOverride || method.ContainingType.TypeKind == TypeKind.Interface);
        if (!isVirtual && !(known.HasProbeAttribute(method) && !method.IsExtern && KnownSymbols.Find(method, known.GeneratedStaticProbeAttribute) is null))
            return null;
        // An interceptor lives outside the caller's type: it must be able to name the method and its type.
        Compilation compilation = semanticModel.Compilation;
        if (!compilation.IsSymbolAccessibleWithin(method, compilation.Assembly) || !compilation.IsSymbolAccessibleWithin(method.ContainingType, compilation.Assembly))
            return null;
        // base.M() is a non-virtual call; an interceptor would turn it into a virtual one.
        if (invocation.Expression is MemberAccessExpressionSyntax { Expression: BaseExpressionSyntax })
            return null;
        if (IsInExpressionTree(invocation, semanticModel, known, cancellationToken))
            return null;

        var receiverKeys = new List<string>();
        if (!method.IsStatic && !method.IsExtensionMethod)
        {
            if (semanticModel.GetOperation(invocation, cancellationToken) is not IInvocationOperation { Instance: { Type: { } receiver } })
                return null;
            if (receiver is ITypeParameterSymbol typeParameter)
            {
                // A constrained call on a T that may be a struct would be boxed by a static interceptor: left alone (PG1008 says so).
                if (!typeParameter.HasReferenceTypeConstraint && !typeParameter.ConstraintTypes.Any(t => t.TypeKind == TypeKind.Class))
                    return null;
                receiver = typeParameter.ConstraintTypes.FirstOrDefault(t => t.TypeKind == TypeKind.Class) ?? method.ContainingType;
            }
            for (ITypeSymbol? t = receiver; t is not null; t = t.BaseType)
                receiverKeys.Add(Key(t));
        }

#pragma warning disable RSEXPERIMENTAL002 // GetInterceptableLocation is the supported way to address a call
        var location = semanticModel.GetInterceptableLocation(invocation, cancellationToken);
#pragma warning restore RSEXPERIMENTAL002
        if (location is null)
            return null;
        return new CallSiteSpec(Shape(method), Key(method), receiverKeys.ToEquatableArray(), isVirtual,
            location.Version, location.Data, location.GetDisplayLocation());
    }

    /// <summary>
    /// The method probes of referenced assemblies built with ProbeGen, so that calls here can fire
    /// them: directly, or through the interfaces and base members they implement.
    /// </summary>
    public static EquatableArray<ProbeSpec> ReferencedProbes(Compilation compilation, CancellationToken cancellationToken)
    {
        KnownSymbols known = KnownSymbols.For(compilation);
        if (known.ProbeAttribute is null)
            return EquatableArray<ProbeSpec>.Empty;
        var result = new List<ProbeSpec>();
        foreach (IAssemblySymbol assembly in compilation.SourceModule.ReferencedAssemblySymbols)
        {
            if (assembly.Name == RuntimeAssemblyName || !assembly.Modules.Any(m => m.ReferencedAssemblies.Any(r => r.Name == RuntimeAssemblyName)))
                continue;
            var types = new Stack<INamespaceOrTypeSymbol>();
            types.Push(assembly.GlobalNamespace);
            while (types.Count > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                foreach (ISymbol member in types.Pop().GetMembers())
                {
                    if (member is INamespaceOrTypeSymbol nested)
                        types.Push(nested);
                    if (member is not IMethodSymbol method || method.IsAbstract || known.ProbeAttributeOf(method) is not { } attribute
                        || KnownSymbols.Find(method, known.GeneratedStaticProbeAttribute) is not null)
                        continue;
                    if (Describe(method, attribute, known, null, null, cancellationToken) is { } spec)
                        result.Add(spec);
                }
            }
        }
        return result.OrderBy(p => p.MethodKey, System.StringComparer.Ordinal).ToEquatableArray();
    }

    /// <summary>A symbol's documentation-comment id: stable across builds, and what the runtime finds a method probe's site by.</summary>
    internal static string DocumentationId(ISymbol symbol) =>
        symbol.OriginalDefinition.GetDocumentationCommentId() ?? symbol.OriginalDefinition.ToDisplayString();

    /// <summary>
    /// A symbol's key for matching calls with probes: its documentation-comment id qualified by its
    /// assembly, since one source file compiled into two assemblies declares two distinct methods
    /// with the same id.
    /// </summary>
    internal static string Key(ISymbol symbol) =>
        (symbol.OriginalDefinition.ContainingAssembly?.Name ?? "") + "|" + DocumentationId(symbol);

    /// <summary>Every member a call may name and still reach <paramref name="method"/>.</summary>
    private static IEnumerable<string> DispatchKeys(IMethodSymbol method)
    {
        var keys = new List<string> { Key(method) };
        for (IMethodSymbol? overridden = method.OverriddenMethod; overridden is not null; overridden = overridden.OverriddenMethod)
            keys.Add(Key(overridden));
        foreach (IMethodSymbol implemented in method.ExplicitInterfaceImplementations)
            keys.Add(Key(implemented));
        INamedTypeSymbol containing = method.ContainingType;
        if (!method.IsStatic && containing.TypeKind != TypeKind.Interface)
            foreach (INamedTypeSymbol @interface in containing.AllInterfaces)
                foreach (IMethodSymbol member in @interface.GetMembers().OfType<IMethodSymbol>())
                    if (!member.IsStatic && SymbolEqualityComparer.Default.Equals(containing.FindImplementationForInterfaceMember(member), method))
                        keys.Add(Key(member));
        return keys.Distinct();
    }

    private static IEnumerable<string> DispatchNames(IMethodSymbol method) =>
        new[] { method.Name }.Concat(method.ExplicitInterfaceImplementations.Select(m => m.Name))
            .Where(n => !n.Contains('.')).Distinct();

    private static IEnumerable<string> AncestorKeys(INamedTypeSymbol type)
    {
        var keys = new List<string>();
        for (INamedTypeSymbol? t = type; t is not null; t = t.BaseType)
            keys.Add(Key(t));
        foreach (INamedTypeSymbol @interface in type.AllInterfaces)
            keys.Add(Key(@interface));
        return keys.Distinct();
    }

    private static bool IsInExpressionTree(SyntaxNode node, SemanticModel model, KnownSymbols known, CancellationToken cancellationToken)
    {
        foreach (SyntaxNode ancestor in node.Ancestors())
        {
            if (ancestor is LambdaExpressionSyntax lambda &&
                model.GetTypeInfo(lambda, cancellationToken).ConvertedType is INamedTypeSymbol t &&
                (KnownSymbols.Is(t, known.ExpressionOfT) || KnownSymbols.Is(t, known.Expression)))
                return true;
            if (ancestor is MemberDeclarationSyntax)
                return false;
        }
        return false;
    }

    private static bool IsGeneratedByUs(IMethodSymbol implementation) =>
        implementation.DeclaringSyntaxReferences.Any(r => r.SyntaxTree.FilePath.EndsWith(".Probes.g.cs", System.StringComparison.Ordinal));

    private static string ProviderOf(INamedTypeSymbol type, KnownSymbols known)
    {
        if (KnownSymbols.Find(type, known.ProbeProviderAttribute) is { ConstructorArguments.Length: 1 } provider && provider.ConstructorArguments[0].Value is string p)
            return p;
        // A generic type's display name has ", " between its type parameters; ids have no whitespace.
        return type.ToDisplayString().Replace(" ", "");
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

    private static string UnboundTypeOf(INamedTypeSymbol type)
    {
        string ns = type.ContainingNamespace.IsGlobalNamespace ? "global::" : "global::" + type.ContainingNamespace.ToDisplayString() + ".";
        return ns + string.Join(".", ContainingChain(type).Select(t => t.Name + (t.Arity == 0 ? "" : "<" + new string(',', t.Arity - 1) + ">")));
    }

    private static string TypeName(INamedTypeSymbol type) =>
        type.TypeParameters.Length == 0 ? type.Name : type.Name + "<" + string.Join(", ", type.TypeParameters.Select(t => t.Name)) + ">";

    private static string Keyword(INamedTypeSymbol type) => type switch
    {
        { IsRecord: true, IsValueType: true } => "record struct",
        { IsRecord: true } => "record",
        { TypeKind: TypeKind.Struct } => "struct",
        { TypeKind: TypeKind.Interface } => "interface",
        _ => "class",
    };

    /// <summary>Why generated code elsewhere in the assembly cannot name <paramref name="symbol"/>, or null when it can.</summary>
    private static string? Inaccessible(Compilation compilation, ISymbol symbol)
    {
        if (symbol is ITypeParameterSymbol || compilation.IsSymbolAccessibleWithin(symbol, compilation.Assembly))
            return null;
        for (ISymbol? s = symbol; s is not null && s is not INamespaceSymbol; s = s.ContainingSymbol)
        {
            if (s.DeclaredAccessibility is Accessibility.Private or Accessibility.Protected or Accessibility.ProtectedAndInternal or Accessibility.ProtectedOrInternal
                && !compilation.IsSymbolAccessibleWithin(s, compilation.Assembly))
            {
                string access = s.DeclaredAccessibility == Accessibility.Private ? "private" : "protected";
                return SymbolEqualityComparer.Default.Equals(s, symbol) ? $"is {access}" : $"is declared in the {access} type '{s.Name}'";
            }
        }
        if (symbol is INamedTypeSymbol { TypeArguments.Length: > 0 } generic)
            foreach (ITypeSymbol argument in generic.TypeArguments)
                if (Inaccessible(compilation, argument) is { } why)
                    return why;
        return "is not accessible";
    }

    internal static bool ContainsTypeParameter(ITypeSymbol type) => type switch
    {
        ITypeParameterSymbol => true,
        IArrayTypeSymbol array => ContainsTypeParameter(array.ElementType),
        INamedTypeSymbol named => named.TypeArguments.Any(ContainsTypeParameter) || (named.ContainingType is { } outer && ContainsTypeParameter(outer)),
        _ => false,
    };

    private static (AsyncKind, ITypeSymbol?) Awaited(ITypeSymbol returnType, KnownSymbols known)
    {
        if (returnType is INamedTypeSymbol named)
        {
            if (KnownSymbols.Is(named, known.Task))
                return (AsyncKind.Task, null);
            if (KnownSymbols.Is(named, known.TaskOfT))
                return (AsyncKind.TaskOfT, named.TypeArguments[0]);
            if (KnownSymbols.Is(named, known.ValueTask))
                return (AsyncKind.ValueTask, null);
            if (KnownSymbols.Is(named, known.ValueTaskOfT))
                return (AsyncKind.ValueTaskOfT, named.TypeArguments[0]);
        }
        return (AsyncKind.None, returnType.SpecialType == SpecialType.System_Void ? null : returnType);
    }

    private static bool AllowsRefLike(ITypeParameterSymbol tp) => tp.AllowsRefLikeType;

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
        if (AllowsRefLike(tp))
            parts.Add("allows ref struct");
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
                diagnostics.Add(new DiagnosticInfo(DiagnosticDescriptors.DuplicateProbeId, probe.Location,
                    new[] { new StringValue(probe.Id), new StringValue(first.Display) }.ToEquatableArray()));
                continue;
            }
            firstById[probe.Id] = probe;
            unique.Add(probe);
        }
        return (unique.ToImmutable(), diagnostics.ToImmutable());
    }
}
