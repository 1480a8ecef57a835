using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace ProbeGen.Analyzers;

/// <summary>
/// Usage mistakes anywhere, not only in handlers: a discarded attachment (PG1006), an SRCU read
/// guard that is not disposed on every path (PG1007), and uses of a method probe that no
/// interceptor can reach (PG1008).
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class UsageAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        Descriptors.UndisposedAttachment, Descriptors.UndisposedReadGuard, Descriptors.NotIntercepted);

    /// <inheritdoc />
    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        // Generated code too: the generator intercepts calls in it, so its misses are as real.
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.Analyze | GeneratedCodeAnalysisFlags.ReportDiagnostics);
        context.RegisterCompilationStartAction(start =>
        {
            var known = KnownSymbols.Create(start.Compilation);
            if (known.ProbeAttribute is null)
                return;
            start.RegisterOperationAction(op => AnalyzeDiscard(op, known), OperationKind.ExpressionStatement, OperationKind.SimpleAssignment);
            start.RegisterOperationAction(op => AnalyzeUnusedLocal(op, known), OperationKind.VariableDeclarator);
            start.RegisterOperationAction(op => AnalyzeGuard(op, known), OperationKind.Invocation);
            // Built on first use, once per compilation: most compilations never ask.
            var index = new System.Lazy<ProbeIndex>(() => new ProbeIndex(start.Compilation, known));
            start.RegisterOperationAction(op => AnalyzeMethodReference(op, index), OperationKind.MethodReference);
            start.RegisterOperationAction(op => AnalyzeProbeCall(op, known, index), OperationKind.Invocation);
            start.RegisterOperationAction(op => AnalyzeUsing(op, known, index), OperationKind.Using, OperationKind.UsingDeclaration);
            start.RegisterOperationAction(op => AnalyzeImplicitCalls(op, index), OperationKind.Loop, OperationKind.Await, OperationKind.DeconstructionAssignment, OperationKind.CollectionExpression);
        });
    }

    private static void AnalyzeDiscard(OperationAnalysisContext context, KnownSymbols known)
    {
        IOperation? value = context.Operation switch
        {
            IExpressionStatementOperation { Operation: IInvocationOperation invocation } => invocation,
            ISimpleAssignmentOperation { Target: IDiscardOperation, Value: var assigned } => assigned,
            _ => null,
        };
        if (value is IInvocationOperation call && known.IsAttachmentLike(call.Type))
            context.ReportDiagnostic(Diagnostic.Create(Descriptors.UndisposedAttachment, call.Syntax.GetLocation(),
                call.Type!.Name, $"{call.TargetMethod.ContainingType.Name}.{call.TargetMethod.Name}"));
    }

    /// <summary>An attachment kept in a local that nothing ever reads: it is never disposed either.</summary>
    private static void AnalyzeUnusedLocal(OperationAnalysisContext context, KnownSymbols known)
    {
        var declarator = (IVariableDeclaratorOperation)context.Operation;
        if (declarator.Initializer?.Value is not IInvocationOperation call || !known.IsAttachmentLike(call.Type))
            return;
        if (declarator.Parent?.Parent is { Parent: IUsingDeclarationOperation or IUsingOperation })
            return;
        IOperation? body = declarator;
        while (body.Parent is not null)
            body = body.Parent;
        foreach (IOperation operation in body.DescendantsAndSelf())
            if (operation is ILocalReferenceOperation reference && SymbolEqualityComparer.Default.Equals(reference.Local, declarator.Symbol))
                return;
        context.ReportDiagnostic(Diagnostic.Create(Descriptors.UndisposedAttachment, call.Syntax.GetLocation(),
            call.Type!.Name, $"{call.TargetMethod.ContainingType.Name}.{call.TargetMethod.Name}"));
    }

    /// <summary>An Enter() whose guard is not the resource of a using: some path can leave the section open.</summary>
    private static void AnalyzeGuard(OperationAnalysisContext context, KnownSymbols known)
    {
        var invocation = (IInvocationOperation)context.Operation;
        if (invocation.TargetMethod.Name != "Enter" || !KnownSymbols.Is(invocation.TargetMethod.ContainingType, known.SrcuDomain))
            return;
        IOperation? parent = invocation.Parent;
        while (parent is IConversionOperation)
            parent = parent.Parent;
        bool inUsing = parent switch
        {
            IUsingOperation => true,
            IVariableInitializerOperation { Parent: IVariableDeclaratorOperation { Parent: IVariableDeclarationOperation { Parent: IVariableDeclarationGroupOperation group } } declarator } =>
                group.Parent is IUsingDeclarationOperation or IUsingOperation || DisposedInFinally(declarator.Symbol, group),
            _ => false,
        };
        if (!inUsing)
            context.ReportDiagnostic(Diagnostic.Create(Descriptors.UndisposedReadGuard, invocation.Syntax.GetLocation(), invocation.Syntax.ToString()));
    }

    /// <summary>The hand-written equivalent of a using: a later try whose finally disposes the guard.</summary>
    private static bool DisposedInFinally(ILocalSymbol local, IOperation declaration)
    {
        if (declaration.Parent is not IBlockOperation block)
            return false;
        foreach (IOperation statement in block.Operations)
        {
            if (statement is not ITryOperation { Finally: { } @finally })
                continue;
            foreach (IOperation operation in @finally.DescendantsAndSelf())
                if (operation is IInvocationOperation { TargetMethod.Name: "Dispose", Instance: ILocalReferenceOperation reference }
                    && SymbolEqualityComparer.Default.Equals(reference.Local, local))
                    return true;
        }
        return false;
    }

    private static void AnalyzeMethodReference(OperationAnalysisContext context, System.Lazy<ProbeIndex> index)
    {
        var reference = (IMethodReferenceOperation)context.Operation;
        if (index.Value.Reachable(reference.Method, reference.Method.IsStatic ? null : reference.Instance?.Type) is not { } probe)
            return;
        context.ReportDiagnostic(Diagnostic.Create(Descriptors.NotIntercepted, reference.Syntax.GetLocation(), Name(probe),
            "a method group or delegate conversion calls the method with no call site to intercept",
            "pass a lambda instead, '(x) => service.Method(x)': a framework that calls the delegate (MapGet, an event, a callback) then calls through it"));
    }

    private static void AnalyzeProbeCall(OperationAnalysisContext context, KnownSymbols known, System.Lazy<ProbeIndex> index)
    {
        var invocation = (IInvocationOperation)context.Operation;
        IMethodSymbol target = invocation.TargetMethod;
        bool isProbe = ProbeIndex.IsMethodProbe(target.OriginalDefinition, known);
        bool dispatches = !target.IsStatic && (target.IsVirtual || target.IsAbstract || target.IsOverride || target.ContainingType.TypeKind == TypeKind.Interface);
        if (!isProbe && !dispatches)
            return;
        // A base call is not virtual: only a probe on the very method it names is missed.
        if (invocation.Syntax is Microsoft.CodeAnalysis.CSharp.Syntax.InvocationExpressionSyntax { Expression: Microsoft.CodeAnalysis.CSharp.Syntax.MemberAccessExpressionSyntax { Expression: Microsoft.CodeAnalysis.CSharp.Syntax.BaseExpressionSyntax } })
        {
            if (isProbe)
                context.ReportDiagnostic(Diagnostic.Create(Descriptors.NotIntercepted, invocation.Syntax.GetLocation(), Name(target.OriginalDefinition),
                    "a base call is not intercepted", "move the shared work into a probed method that both call"));
            return;
        }
        ITypeSymbol? receiver = target.IsStatic ? null : invocation.Instance?.Type;
        if (index.Value.Reachable(target, receiver) is not { } probe)
            return;

        if (invocation.IsImplicit || invocation.Syntax is not Microsoft.CodeAnalysis.CSharp.Syntax.InvocationExpressionSyntax)
        {
            string construct = invocation.Syntax is Microsoft.CodeAnalysis.CSharp.Syntax.QueryClauseSyntax or Microsoft.CodeAnalysis.CSharp.Syntax.SelectOrGroupClauseSyntax
                or Microsoft.CodeAnalysis.CSharp.Syntax.OrderingSyntax or Microsoft.CodeAnalysis.CSharp.Syntax.QueryContinuationSyntax
                ? "a query clause" : "a collection initializer";
            context.ReportDiagnostic(Diagnostic.Create(Descriptors.NotIntercepted, invocation.Syntax.GetLocation(), Name(probe),
                $"the compiler calls '{target.Name}' here for {construct}, with no call site to intercept",
                $"call {target.Name}(...) explicitly"));
        }
        else if (InExpressionTree(invocation, known))
            context.ReportDiagnostic(Diagnostic.Create(Descriptors.NotIntercepted, invocation.Syntax.GetLocation(), Name(probe),
                "a call inside an expression tree is data, not a call", "compile the expression, or call the method outside it"));
        else if (dispatches && receiver is ITypeParameterSymbol typeParameter
            && !typeParameter.HasReferenceTypeConstraint && !typeParameter.ConstraintTypes.Any(t => t.TypeKind == TypeKind.Class))
            context.ReportDiagnostic(Diagnostic.Create(Descriptors.NotIntercepted, invocation.Syntax.GetLocation(), Name(probe),
                $"the call is on the type parameter '{typeParameter.Name}', which may be a struct that an interceptor would copy",
                target.ContainingType.TypeKind == TypeKind.Interface
                    ? $"constrain '{typeParameter.Name}' to 'class', or call through the interface"
                    : $"constrain '{typeParameter.Name}' to 'class'"));
    }

    /// <summary>
    /// Calls the compiler makes for a language construct, with no call site to intercept: foreach
    /// (GetEnumerator, MoveNext, Current, Dispose), await (GetAwaiter, IsCompleted, GetResult) and
    /// deconstruction (Deconstruct) and collection expressions (a [CollectionBuilder] method).
    /// </summary>
    private static void AnalyzeImplicitCalls(OperationAnalysisContext context, System.Lazy<ProbeIndex> index)
    {
        SemanticModel? model = context.Operation.SemanticModel;
        if (model is null)
            return;
        (string construct, ITypeSymbol? receiver, IMethodSymbol?[] methods) = context.Operation switch
        {
            IForEachLoopOperation { Syntax: Microsoft.CodeAnalysis.CSharp.Syntax.CommonForEachStatementSyntax syntax } loop => ForEach(model, syntax, loop),
            IAwaitOperation { Syntax: Microsoft.CodeAnalysis.CSharp.Syntax.AwaitExpressionSyntax syntax, Operation: var awaited } => Await(model, syntax, awaited),
            IDeconstructionAssignmentOperation { Syntax: Microsoft.CodeAnalysis.CSharp.Syntax.AssignmentExpressionSyntax syntax, Value: var value } =>
                ("a deconstruction", value.Type, new[] { Microsoft.CodeAnalysis.CSharp.CSharpExtensions.GetDeconstructionInfo(model, syntax).Method }),
            ICollectionExpressionOperation collection => ("a collection expression", (ITypeSymbol?)null, new[] { collection.ConstructMethod as IMethodSymbol }),
            _ => ("", (ITypeSymbol?)null, System.Array.Empty<IMethodSymbol?>()),
        };
        foreach (IMethodSymbol? method in methods)
        {
            if (method is null || index.Value.Reachable(method, method.IsStatic && !method.IsExtensionMethod ? null : receiver) is not { } probe)
                continue;
            context.ReportDiagnostic(Diagnostic.Create(Descriptors.NotIntercepted, context.Operation.Syntax.GetLocation(), Name(probe),
                $"{construct} calls '{method.Name}' with no call site to intercept",
                $"probe a method that '{method.Name}' calls, or call it explicitly"));
            return;
        }
    }

    private static (string, ITypeSymbol?, IMethodSymbol?[]) ForEach(SemanticModel model, Microsoft.CodeAnalysis.CSharp.Syntax.CommonForEachStatementSyntax syntax, IForEachLoopOperation loop)
    {
        Microsoft.CodeAnalysis.CSharp.ForEachStatementInfo info = Microsoft.CodeAnalysis.CSharp.CSharpExtensions.GetForEachStatementInfo(model, syntax);
        ITypeSymbol? collection = loop.Collection is IConversionOperation { IsImplicit: true } conversion ? conversion.Operand.Type : loop.Collection.Type;
        return ("a foreach loop", collection, new[] { info.GetEnumeratorMethod, info.MoveNextMethod, info.CurrentProperty?.GetMethod, info.DisposeMethod });
    }

    private static (string, ITypeSymbol?, IMethodSymbol?[]) Await(SemanticModel model, Microsoft.CodeAnalysis.CSharp.Syntax.AwaitExpressionSyntax syntax, IOperation awaited)
    {
        Microsoft.CodeAnalysis.CSharp.AwaitExpressionInfo info = Microsoft.CodeAnalysis.CSharp.CSharpExtensions.GetAwaitExpressionInfo(model, syntax);
        return ("an await", awaited.Type, new[] { info.GetAwaiterMethod, info.IsCompletedProperty?.GetMethod, info.GetResultMethod });
    }

    /// <summary>A using statement or declaration calls Dispose with no call site: a probed Dispose it reaches never fires.</summary>
    private static void AnalyzeUsing(OperationAnalysisContext context, KnownSymbols known, System.Lazy<ProbeIndex> index)
    {
        IEnumerable<IOperation> resources = context.Operation switch
        {
            IUsingOperation { Resources: var r } => new[] { r },
            IUsingDeclarationOperation { DeclarationGroup: var g } => new[] { (IOperation)g },
            _ => System.Array.Empty<IOperation>(),
        };
        bool isAsync = context.Operation is IUsingOperation { IsAsynchronous: true } or IUsingDeclarationOperation { IsAsynchronous: true };
        INamedTypeSymbol? disposable = isAsync ? known.IAsyncDisposable : known.IDisposable;
        if (disposable?.GetMembers(isAsync ? "DisposeAsync" : "Dispose").OfType<IMethodSymbol>().FirstOrDefault() is not { } dispose)
            return;
        foreach (IOperation resource in resources)
            foreach ((ITypeSymbol type, SyntaxNode at) in ResourceTypes(resource))
            {
                IMethodSymbol? probe = type.FindImplementationForInterfaceMember(dispose) is IMethodSymbol implementation && ProbeIndex.IsMethodProbe(implementation.OriginalDefinition, known)
                    ? implementation
                    : index.Value.Reachable(dispose, type);
                if (probe is null)
                    continue;
                context.ReportDiagnostic(Diagnostic.Create(Descriptors.NotIntercepted, at.GetLocation(), Name(probe),
                    $"a 'using' calls {dispose.Name} with no call site to intercept",
                    $"call {dispose.Name}() yourself in a finally block to make it fire"));
                return;
            }
    }

    private static IEnumerable<(ITypeSymbol Type, SyntaxNode At)> ResourceTypes(IOperation resource)
    {
        if (resource is IVariableDeclarationGroupOperation group)
        {
            foreach (IVariableDeclarationOperation declaration in group.Declarations)
                foreach (IVariableDeclaratorOperation declarator in declaration.Declarators)
                    yield return (declarator.Symbol.Type, declarator.Initializer?.Value.Syntax ?? declarator.Syntax);
            yield break;
        }
        IOperation value = resource is IConversionOperation { IsImplicit: true } conversion ? conversion.Operand : resource;
        if (value.Type is { } type)
            yield return (type, value.Syntax);
    }

    /// <summary>The probed method as the message names it: its type and name, so that a popular name says whose it is.</summary>
    private static string Name(IMethodSymbol probe) => probe.ContainingType.Name + "." + probe.Name;

    private static bool InExpressionTree(IOperation operation, KnownSymbols known)
    {
        for (IOperation? parent = operation.Parent; parent is not null; parent = parent.Parent)
        {
            if (parent is IAnonymousFunctionOperation && parent.Parent is IConversionOperation { Type: INamedTypeSymbol type }
                && KnownSymbols.Is(type, known.Expression))
                return true;
            if (parent is IDelegateCreationOperation { Type: INamedTypeSymbol delegateType } && KnownSymbols.Is(delegateType, known.Expression))
                return true;
        }
        return false;
    }
}
