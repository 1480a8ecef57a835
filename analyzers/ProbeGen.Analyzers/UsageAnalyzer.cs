using System.Collections.Generic;
using System.Collections.Immutable;
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
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterCompilationStartAction(start =>
        {
            var known = KnownSymbols.Create(start.Compilation);
            if (known.ProbeAttribute is null)
                return;
            start.RegisterOperationAction(op => AnalyzeDiscard(op, known), OperationKind.ExpressionStatement, OperationKind.SimpleAssignment);
            start.RegisterOperationAction(op => AnalyzeUnusedLocal(op, known), OperationKind.VariableDeclarator);
            start.RegisterOperationAction(op => AnalyzeGuard(op, known), OperationKind.Invocation);
            start.RegisterOperationAction(op => AnalyzeMethodReference(op, known), OperationKind.MethodReference);
            start.RegisterOperationAction(op => AnalyzeProbeCall(op, known), OperationKind.Invocation);
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

    private static void AnalyzeMethodReference(OperationAnalysisContext context, KnownSymbols known)
    {
        var reference = (IMethodReferenceOperation)context.Operation;
        IMethodSymbol method = reference.Method.OriginalDefinition;
        if (IsMethodProbe(method, known))
            context.ReportDiagnostic(Diagnostic.Create(Descriptors.NotIntercepted, reference.Syntax.GetLocation(), method.Name,
                "a method group or delegate conversion calls the method directly", "call it in a lambda instead: x => obj.Method(x)"));
    }

    private static void AnalyzeProbeCall(OperationAnalysisContext context, KnownSymbols known)
    {
        var invocation = (IInvocationOperation)context.Operation;
        IMethodSymbol target = invocation.TargetMethod.OriginalDefinition;

        if (IsMethodProbe(target, known))
        {
            if (invocation.Instance is IInstanceReferenceOperation { ReferenceKind: InstanceReferenceKind.ContainingTypeInstance } && invocation.Syntax is Microsoft.CodeAnalysis.CSharp.Syntax.InvocationExpressionSyntax { Expression: Microsoft.CodeAnalysis.CSharp.Syntax.MemberAccessExpressionSyntax { Expression: Microsoft.CodeAnalysis.CSharp.Syntax.BaseExpressionSyntax } })
                context.ReportDiagnostic(Diagnostic.Create(Descriptors.NotIntercepted, invocation.Syntax.GetLocation(), target.Name,
                    "a base call is not intercepted", "probe the override, or call the method through a regular reference"));
            else if (InExpressionTree(invocation, known))
                context.ReportDiagnostic(Diagnostic.Create(Descriptors.NotIntercepted, invocation.Syntax.GetLocation(), target.Name,
                    "a call inside an expression tree is data, not a call", "compile the expression, or call the method outside it"));
            return;
        }

        // A call through an interface or an abstract or virtual base whose implementation here is a method probe.
        if (target.IsAbstract || target.IsVirtual || target.ContainingType.TypeKind == TypeKind.Interface)
        {
            foreach (IMethodSymbol implementation in ImplementationsInCompilation(target, context.Compilation))
            {
                if (!IsMethodProbe(implementation, known))
                    continue;
                context.ReportDiagnostic(Diagnostic.Create(Descriptors.NotIntercepted, invocation.Syntax.GetLocation(), implementation.Name,
                    $"the call goes through '{target.ContainingType.Name}.{target.Name}', and only calls of the probed method itself are intercepted",
                    $"call it on a {implementation.ContainingType.Name} reference, or put the probe on a method that the call reaches directly"));
                return;
            }
        }
    }

    private static IEnumerable<IMethodSymbol> ImplementationsInCompilation(IMethodSymbol target, Compilation compilation)
    {
        if (target.ContainingType.TypeKind != TypeKind.Interface)
            yield break;
        // Only types of this compilation can hold a probe the generator intercepts.
        var stack = new Stack<INamespaceOrTypeSymbol>();
        stack.Push(compilation.Assembly.GlobalNamespace);
        while (stack.Count > 0)
        {
            INamespaceOrTypeSymbol current = stack.Pop();
            foreach (ISymbol member in current.GetMembers())
            {
                if (member is INamespaceOrTypeSymbol nested)
                    stack.Push(nested);
                if (member is INamedTypeSymbol type && type.AllInterfaces.Contains(target.ContainingType, SymbolEqualityComparer.Default)
                    && type.FindImplementationForInterfaceMember(target) is IMethodSymbol implementation)
                    yield return implementation;
            }
        }
    }

    private static bool IsMethodProbe(IMethodSymbol method, KnownSymbols known) =>
        !method.IsPartialDefinition && method.PartialDefinitionPart is null && known.HasAttribute(method, known.ProbeAttribute)
        && method.DeclaringSyntaxReferences.Length > 0;

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
