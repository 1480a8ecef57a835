using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace ProbeGen.Analyzers;

/// <summary>
/// Finds probe handler code and reports what is unsafe on a probe's hot path: blocking calls
/// (PG1001), grace-period waits (PG1002), async handlers (PG1003), throws that leave the handler
/// (PG1004) and per-hit allocations (PG1005).
/// </summary>
/// <remarks>
/// Handler code is: a lambda, method group or local function passed to a parameter marked
/// [ProbeHandler]; a method that overrides a method marked [ProbeHandler] (ProbeConsumer.OnHit);
/// and, one level deep, the bodies of methods of this compilation that handler code calls.
/// A lambda nested inside a handler is not handler code: it may run anywhere (queued to the
/// thread pool, say), so only its creation is looked at.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class HotPathAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc />
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(
        Descriptors.BlockingCall, Descriptors.GracePeriodWait, Descriptors.AsyncHandler, Descriptors.ThrowInHandler, Descriptors.PerHitAllocation);

    /// <inheritdoc />
    public override void Initialize(AnalysisContext context)
    {
        context.EnableConcurrentExecution();
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.RegisterCompilationStartAction(start =>
        {
            var known = KnownSymbols.Create(start.Compilation);
            if (known.ProbeHandlerAttribute is null)
                return;
            // Methods reached from handler code, scanned once at the end with no further depth.
            var called = new ConcurrentDictionary<IMethodSymbol, byte>(SymbolEqualityComparer.Default);
            var handlerMethods = new ConcurrentDictionary<IMethodSymbol, byte>(SymbolEqualityComparer.Default);

            start.RegisterOperationAction(op => AnalyzeArgument(op, known, called, handlerMethods), OperationKind.Argument);

            start.RegisterOperationBlockAction(block =>
            {
                if (block.OwningSymbol is IMethodSymbol method && OverridesHandler(method, known))
                    foreach (IOperation root in block.OperationBlocks)
                        new Scanner(known, block.ReportDiagnostic, called, depth: 0, root).Scan(root);
            });

            start.RegisterCompilationEndAction(end =>
            {
                foreach (IMethodSymbol method in handlerMethods.Keys)
                    ScanMethod(method, end.Compilation, known, end.ReportDiagnostic, called, depth: 0, end.CancellationToken);
                foreach (IMethodSymbol method in called.Keys.ToArray())
                    ScanMethod(method, end.Compilation, known, end.ReportDiagnostic, called: null, depth: 1, end.CancellationToken);
            });
        });
    }

    private static void AnalyzeArgument(OperationAnalysisContext context, KnownSymbols known,
        ConcurrentDictionary<IMethodSymbol, byte> called, ConcurrentDictionary<IMethodSymbol, byte> handlerMethods)
    {
        var argument = (IArgumentOperation)context.Operation;
        if (argument.Parameter is null || !known.HasAttribute(argument.Parameter, known.ProbeHandlerAttribute))
            return;
        IOperation value = argument.Value;
        while (value is IConversionOperation conversion)
            value = conversion.Operand;
        if (value is not IDelegateCreationOperation creation)
            return;
        switch (creation.Target)
        {
            case IAnonymousFunctionOperation lambda:
                if (lambda.Symbol.IsAsync)
                    context.ReportDiagnostic(Diagnostic.Create(Descriptors.AsyncHandler, lambda.Syntax.GetLocation(), "lambda"));
                new Scanner(known, context.ReportDiagnostic, called, depth: 0, lambda.Body).Scan(lambda.Body);
                break;
            case IMethodReferenceOperation reference:
                IMethodSymbol target = reference.Method.OriginalDefinition;
                if (target.IsAsync)
                    context.ReportDiagnostic(Diagnostic.Create(Descriptors.AsyncHandler, reference.Syntax.GetLocation(), target.Name));
                if (target.DeclaringSyntaxReferences.Length > 0)
                    handlerMethods.TryAdd(target, 0);
                break;
        }
    }

    private static bool OverridesHandler(IMethodSymbol method, KnownSymbols known)
    {
        for (IMethodSymbol? m = method.OverriddenMethod; m is not null; m = m.OverriddenMethod)
            if (known.HasAttribute(m, known.ProbeHandlerAttribute))
                return true;
        return false;
    }

    private static void ScanMethod(IMethodSymbol method, Compilation compilation, KnownSymbols known, System.Action<Diagnostic> report,
        ConcurrentDictionary<IMethodSymbol, byte>? called, int depth, System.Threading.CancellationToken cancellationToken)
    {
        foreach (SyntaxReference reference in method.DeclaringSyntaxReferences)
        {
            SyntaxNode syntax = reference.GetSyntax(cancellationToken);
            if (!compilation.ContainsSyntaxTree(syntax.SyntaxTree))
                continue;
            // The methods to scan are known only once every handler has been seen, at compilation end,
            // where no semantic model is handed out: asking the compilation for one is the way.
#pragma warning disable RS1030
            SemanticModel model = compilation.GetSemanticModel(syntax.SyntaxTree);
#pragma warning restore RS1030
            foreach (SyntaxNode child in syntax.ChildNodes())
            {
                if (model.GetOperation(child, cancellationToken) is { } body && body.Kind is OperationKind.Block or OperationKind.MethodBody)
                    new Scanner(known, report, called, depth, body).Scan(body);
                else if (child is Microsoft.CodeAnalysis.CSharp.Syntax.ArrowExpressionClauseSyntax arrow && model.GetOperation(arrow.Expression, cancellationToken) is { } expression)
                    new Scanner(known, report, called, depth, expression).Scan(expression);
            }
        }
    }

    /// <summary>Walks one piece of handler code.</summary>
    private sealed class Scanner(KnownSymbols known, System.Action<Diagnostic> report,
        ConcurrentDictionary<IMethodSymbol, byte>? called, int depth, IOperation root)
    {
        public void Scan(IOperation operation)
        {
            Check(operation);
            foreach (IOperation child in operation.ChildOperations)
            {
                // A nested lambda or local function may run anywhere: only its creation counts.
                if (child is IAnonymousFunctionOperation or ILocalFunctionOperation)
                {
                    CheckNestedFunction(child);
                    continue;
                }
                if (child is IDelegateCreationOperation { Target: IAnonymousFunctionOperation } creation)
                {
                    CheckNestedFunction(creation.Target);
                    continue;
                }
                Scan(child);
            }
        }

        private void Check(IOperation operation)
        {
            switch (operation)
            {
                case IInvocationOperation invocation:
                    CheckCall(invocation.TargetMethod, invocation);
                    break;
                case IPropertyReferenceOperation { Property.Name: "Result" } property
                    when KnownSymbols.Is(property.Property.ContainingType, known.TaskOfT) || KnownSymbols.Is(property.Property.ContainingType, known.ValueTaskOfT):
                    Report(Descriptors.BlockingCall, property, $"{property.Property.ContainingType.Name}.Result", "queue a continuation instead of waiting for the task");
                    break;
                case ILockOperation lockOperation:
                    Report(Descriptors.BlockingCall, lockOperation.LockedValue, "lock", "use Interlocked or a lock-free structure, or hand the work to another thread");
                    break;
                case IThrowOperation throwOperation when !IsCaught(throwOperation):
                    report(Diagnostic.Create(Descriptors.ThrowInHandler, throwOperation.Syntax.GetLocation()));
                    break;
                case IInterpolatedStringOperation interpolated when interpolated.Parts.Any(p => p is IInterpolationOperation):
                    Report(Descriptors.PerHitAllocation, interpolated, "String interpolation", "format the message where it is read, not on the hot path");
                    break;
                case IBinaryOperation { OperatorKind: BinaryOperatorKind.Add, Type.SpecialType: SpecialType.System_String } concat
                    when concat.ConstantValue is not { HasValue: true } && concat.Parent is not IBinaryOperation { OperatorKind: BinaryOperatorKind.Add, Type.SpecialType: SpecialType.System_String }:
                    Report(Descriptors.PerHitAllocation, concat, "String concatenation", "record the parts and join them where they are read");
                    break;
                case IConversionOperation { Operand.Type.IsValueType: true, Type.IsReferenceType: true } boxing when !boxing.IsConstant():
                    Report(Descriptors.PerHitAllocation, boxing, $"Boxing a {boxing.Operand.Type?.ToDisplayString()}", "keep the value typed (use the typed argument accessors)");
                    break;
                case IUsingOperation usingOperation when usingOperation.Resources is { } resources && known.IsAttachmentLike(resources.Type ?? (resources as IVariableDeclarationGroupOperation)?.Declarations.FirstOrDefault()?.Declarators.FirstOrDefault()?.Symbol.Type):
                    Report(Descriptors.GracePeriodWait, usingOperation.Resources, "using (attachment)", "");
                    break;
            }
        }

        private void CheckCall(IMethodSymbol method, IOperation at)
        {
            IMethodSymbol m = method.ReducedFrom ?? method;
            string name = m.Name;
            INamedTypeSymbol type = m.ContainingType;
            string typeName = type.ToDisplayString();

            if ((KnownSymbols.Is(type, known.SrcuDomain) && name is "Synchronize" or "Barrier")
                || (known.IsAttachmentLike(type) && name == "Dispose"))
            {
                Report(Descriptors.GracePeriodWait, at, $"{type.Name}.{name}()", "");
                return;
            }
            if (Blocking(type, typeName, name) is { } advice)
            {
                Report(Descriptors.BlockingCall, at, $"{type.Name}.{name}", advice);
                return;
            }
            if (typeName == "System.Linq.Enumerable")
            {
                Report(Descriptors.PerHitAllocation, at, $"The LINQ call '{name}'", "use a loop over the values you need");
                return;
            }
            if (depth == 0 && called is not null && m.DeclaringSyntaxReferences.Length > 0 && m.MethodKind is MethodKind.Ordinary)
                called.TryAdd(m.OriginalDefinition, 0);
        }

        private string? Blocking(INamedTypeSymbol type, string typeName, string name)
        {
            const string dontWait = "a handler must not wait: record what you need and let another thread act on it";
            const string queueIo = "queue the work (a Channel<T>, ThreadPool.UnsafeQueueUserWorkItem) and do the I/O on another thread";
            switch (typeName)
            {
                case "System.Threading.Thread" when name is "Sleep" or "Join":
                    return dontWait;
                case "System.Threading.Tasks.Task" when name is "Wait" or "WaitAll" or "WaitAny" or "RunSynchronously":
                    return "queue a continuation instead of waiting for the task";
                case "System.Threading.Monitor" when name is "Enter" or "TryEnter" or "Wait":
                case "System.Threading.Lock" when name is "Enter" or "EnterScope":
                    return "use Interlocked or a lock-free structure, or hand the work to another thread";
                case "System.Threading.SemaphoreSlim" or "System.Threading.ManualResetEventSlim" or "System.Threading.CountdownEvent" when name == "Wait":
                case "System.Threading.Barrier" when name is "SignalAndWait":
                case "System.Threading.ReaderWriterLockSlim" when name.StartsWith("Enter", System.StringComparison.Ordinal):
                    return dontWait;
                case "System.Console" when name is "Write" or "WriteLine" or "Read" or "ReadLine" or "ReadKey":
                    return queueIo;
                case "System.IO.File" when !name.EndsWith("Async", System.StringComparison.Ordinal) && name != "Exists":
                    return queueIo;
                case "System.Net.Sockets.Socket" when name is "Send" or "SendTo" or "Receive" or "ReceiveFrom" or "Connect" or "Accept":
                case "System.Net.Http.HttpClient" when name == "Send":
                case "System.Net.Dns" when name is "GetHostEntry" or "GetHostAddresses":
                    return queueIo;
                case "System.Runtime.CompilerServices.TaskAwaiter" or "System.Runtime.CompilerServices.TaskAwaiter<TResult>"
                    or "System.Runtime.CompilerServices.ValueTaskAwaiter" or "System.Runtime.CompilerServices.ValueTaskAwaiter<TResult>" when name == "GetResult":
                    return "GetAwaiter().GetResult() waits for the task; queue a continuation instead";
            }
            if (type.OriginalDefinition.ToDisplayString() is "System.Runtime.CompilerServices.TaskAwaiter<TResult>" or "System.Runtime.CompilerServices.ValueTaskAwaiter<TResult>"
                && name == "GetResult")
                return "GetAwaiter().GetResult() waits for the task; queue a continuation instead";
            if (KnownSymbols.DerivesFrom(type, known.WaitHandle) && name is "WaitOne" or "WaitAll" or "WaitAny")
                return dontWait;
            // In-memory readers and writers do no I/O.
            if (typeName is "System.IO.StringWriter" or "System.IO.StringReader" or "System.IO.MemoryStream")
                return null;
            if ((KnownSymbols.DerivesFrom(type, known.Stream) || KnownSymbols.DerivesFrom(type, known.TextWriter) || KnownSymbols.DerivesFrom(type, known.TextReader))
                && name is "Read" or "ReadByte" or "ReadLine" or "ReadToEnd" or "ReadBlock" or "Write" or "WriteByte" or "WriteLine" or "Flush" or "CopyTo")
                return queueIo;
            return null;
        }

        private void CheckNestedFunction(IOperation function)
        {
            if (function.SemanticModel is null || function is not IAnonymousFunctionOperation)
                return;
            DataFlowAnalysis? flow = function.SemanticModel.AnalyzeDataFlow(function.Syntax);
            if (flow is { Succeeded: true } && flow.CapturedInside.Length > 0)
                Report(Descriptors.PerHitAllocation, function, "A lambda that captures variables",
                    "each hit allocates its closure; pass state explicitly or hoist the lambda out of the handler");
        }

        private bool IsCaught(IOperation operation)
        {
            for (IOperation? child = operation, parent = operation.Parent; parent is not null && child != root; child = parent, parent = parent.Parent)
            {
                if (parent is ITryOperation tryOperation && ReferenceEquals(tryOperation.Body, child) && tryOperation.Catches.Length > 0)
                    return true;
            }
            return false;
        }

        private void Report(DiagnosticDescriptor descriptor, IOperation at, string what, string advice) =>
            report(descriptor == Descriptors.GracePeriodWait
                ? Diagnostic.Create(descriptor, at.Syntax.GetLocation(), what)
                : Diagnostic.Create(descriptor, at.Syntax.GetLocation(), what, advice));
    }
}

internal static class OperationExtensions
{
    /// <summary>Boxing a constant is not the per-hit allocation worth a diagnostic.</summary>
    public static bool IsConstant(this IConversionOperation conversion) =>
        conversion.Operand.ConstantValue.HasValue;
}
