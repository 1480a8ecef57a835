using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp.Testing;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Testing;

namespace ProbeGen.Analyzers.Tests;

/// <summary>Runs an analyzer (and a fix) with the testing library, against .NET 10 and the real ProbeGen runtime.</summary>
internal static class Verify<TAnalyzer> where TAnalyzer : DiagnosticAnalyzer, new()
{
    public const string Usings = "using System;\nusing System.IO;\nusing System.Linq;\nusing System.Threading;\nusing System.Threading.Tasks;\nusing ProbeGen;\nusing ProbeGen.Concurrency;\n";

    public static Task Analyze(string source) => Analyze(source, DiagnosticSeverity.Info);

    /// <summary>Asserts exactly the diagnostics marked in <paramref name="source"/> with {|PG1xxx:...|}.</summary>
    public static Task Analyze(string source, DiagnosticSeverity least)
    {
        var test = new CSharpAnalyzerTest<TAnalyzer, DefaultVerifier> { TestCode = Usings + source };
        Configure(test.TestState);
        return test.RunAsync();
    }

    public static Task Fix<TFix>(string source, string fixedSource) where TFix : CodeFixProvider, new()
    {
        var test = new CSharpCodeFixTest<TAnalyzer, TFix, DefaultVerifier>
        {
            TestCode = Usings + source,
            FixedCode = Usings + fixedSource,
        };
        Configure(test.TestState);
        Configure(test.FixedState);
        return test.RunAsync();
    }

    private static void Configure(SolutionState state)
    {
        // No reference pack download: .NET 10 reference assemblies from a package, and the runtime itself.
        state.ReferenceAssemblies = new ReferenceAssemblies("net10.0");
        state.AdditionalReferences.AddRange(Basic.Reference.Assemblies.Net100.References.All);
        state.AdditionalReferences.Add(MetadataReference.CreateFromFile(typeof(ProbeSite).Assembly.Location));
    }
}
