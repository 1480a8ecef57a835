using System.Collections.Immutable;
using System.Composition;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace ProbeGen.Analyzers.CodeFixes;

/// <summary>PG1002: a synchronous detach inside a handler becomes the deferred detach.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(DeferredDetachFix)), Shared]
public sealed class DeferredDetachFix : CodeFixProvider
{
    /// <inheritdoc />
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create("PG1002");

    /// <inheritdoc />
    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    /// <inheritdoc />
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        SyntaxNode? root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root?.FindNode(context.Span, getInnermostNodeForTie: true)?.FirstAncestorOrSelf<InvocationExpressionSyntax>() is not
            { Expression: MemberAccessExpressionSyntax { Name.Identifier.Text: "Dispose" } access } invocation)
            return;
        SemanticModel? model = await context.Document.GetSemanticModelAsync(context.CancellationToken).ConfigureAwait(false);
        string? typeName = model?.GetTypeInfo(access.Expression, context.CancellationToken).Type?.Name;
        ExpressionSyntax attachment = typeName == "ProbeAttachment"
            ? access.Expression
            : SyntaxFactory.MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, access.Expression, SyntaxFactory.IdentifierName("Attachment"));
        context.RegisterCodeFix(CodeAction.Create("Detach deferred (returns at once)", ct =>
        {
            ExpressionSyntax deferred = SyntaxFactory.InvocationExpression(
                SyntaxFactory.MemberAccessExpression(SyntaxKind.SimpleMemberAccessExpression, attachment, SyntaxFactory.IdentifierName("DetachDeferred")));
            SyntaxNode newRoot = invocation.Parent is ExpressionStatementSyntax statement
                ? root.ReplaceNode(statement, SyntaxFactory.ExpressionStatement(
                    SyntaxFactory.AssignmentExpression(SyntaxKind.SimpleAssignmentExpression, SyntaxFactory.IdentifierName("_"), deferred))
                    .WithTriviaFrom(statement))
                : root.ReplaceNode(invocation, deferred.WithTriviaFrom(invocation));
            return Task.FromResult(context.Document.WithSyntaxRoot(newRoot));
        }, nameof(DeferredDetachFix)), context.Diagnostics);
    }
}

/// <summary>PG1003: an async handler lambda with no await left loses its async.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(RemoveAsyncFix)), Shared]
public sealed class RemoveAsyncFix : CodeFixProvider
{
    /// <inheritdoc />
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create("PG1003");

    /// <inheritdoc />
    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    /// <inheritdoc />
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        SyntaxNode? root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root?.FindNode(context.Span, getInnermostNodeForTie: true)?.FirstAncestorOrSelf<AnonymousFunctionExpressionSyntax>() is not { } lambda
            || lambda.AsyncKeyword == default)
            return;
        // Only where no await remains: otherwise removing async would not compile.
        if (lambda.Body.DescendantNodes(n => n is not AnonymousFunctionExpressionSyntax and not LocalFunctionStatementSyntax).OfType<AwaitExpressionSyntax>().Any())
            return;
        context.RegisterCodeFix(CodeAction.Create("Make the handler synchronous", ct =>
        {
            SyntaxToken asyncKeyword = lambda.AsyncKeyword;
            AnonymousFunctionExpressionSyntax synchronous = lambda.ReplaceToken(asyncKeyword, SyntaxFactory.Token(SyntaxKind.None))
                .WithLeadingTrivia(asyncKeyword.LeadingTrivia);
            return Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(lambda, synchronous)));
        }, nameof(RemoveAsyncFix)), context.Diagnostics);
    }
}

/// <summary>PG1006: a discarded attachment is kept in a using declaration.</summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(UsingAttachmentFix)), Shared]
public sealed class UsingAttachmentFix : CodeFixProvider
{
    /// <inheritdoc />
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create("PG1006");

    /// <inheritdoc />
    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    /// <inheritdoc />
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        SyntaxNode? root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root?.FindNode(context.Span, getInnermostNodeForTie: true)?.FirstAncestorOrSelf<ExpressionStatementSyntax>() is not { } statement
            || statement.Parent is not BlockSyntax)
            return;
        ExpressionSyntax value = statement.Expression is AssignmentExpressionSyntax { Left: IdentifierNameSyntax { Identifier.Text: "_" } } discard
            ? discard.Right
            : statement.Expression;
        context.RegisterCodeFix(CodeAction.Create("Keep it in a 'using' declaration", ct =>
        {
            StatementSyntax declaration = SyntaxFactory.ParseStatement($"using var attachment = {value.WithoutTrivia().ToFullString()};")
                .WithTriviaFrom(statement);
            return Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(statement, declaration)));
        }, nameof(UsingAttachmentFix)), context.Diagnostics);
    }
}
