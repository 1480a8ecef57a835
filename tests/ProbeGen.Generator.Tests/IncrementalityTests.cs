using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ProbeGen.Generator.Tests;

/// <summary>An edit that does not touch a probe leaves every tracked step cached or unchanged.</summary>
public class IncrementalityTests
{
    [Fact]
    public void AnUnrelatedEditReusesEveryStep()
    {
        const string unrelated = """
            namespace Shapes;
            public static class Unrelated
            {
                public static int Value() => 1;
            }
            """;
        CSharpCompilation first = Harness.Compilation("Inc", ShapesSource.Probes, ShapesSource.Scenarios, unrelated);
        GeneratorDriver driver = Harness.Driver(trackSteps: true).RunGenerators(first);

        // Edit a method body that neither declares nor calls a probe.
        SyntaxTree old = first.SyntaxTrees.Last();
        SyntaxTree edited = old.WithChangedText(old.GetText().Replace(old.GetText().ToString().IndexOf("=> 1"), 4, "=> 2"));
        CSharpCompilation second = first.ReplaceSyntaxTree(old, edited);
        driver = driver.RunGenerators(second);

        GeneratorRunResult result = driver.GetRunResult().Results.Single();
        foreach (string step in new[] { ProbeGenerator.Steps.Probes, ProbeGenerator.Steps.ProbeSpecs, ProbeGenerator.Steps.ProbedTypes, ProbeGenerator.Steps.CallSites,
            ProbeGenerator.Steps.ReferencedProbes, ProbeGenerator.Steps.CallNames, ProbeGenerator.Steps.Interception, ProbeGenerator.Steps.AssemblyName })
        {
            Assert.True(result.TrackedSteps.TryGetValue(step, out var runs), $"step {step} was not tracked");
            foreach (var output in runs.SelectMany(r => r.Outputs))
                Assert.True(output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged,
                    $"step {step} re-ran with {output.Reason}");
        }
        foreach (var output in result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(r => r.Outputs))
            Assert.True(output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"an output re-ran with {output.Reason}");
    }

    [Fact]
    public void EditingAProbeRegeneratesIt()
    {
        GeneratorRunResult result = RunAfterEditingTheProbes("Inc2", "[Probe(\"in_param\")]", "[Probe(\"in_param2\")]");
        Assert.Contains(result.TrackedSteps[ProbeGenerator.Steps.ProbeSpecs].SelectMany(r => r.Outputs), o => o.Reason == IncrementalStepRunReason.Modified);
        Assert.Contains(result.GeneratedSources, s => s.SourceText.ToString().Contains("\"in_param2\""));
    }

    [Fact]
    public void EditingOneProbedTypeLeavesTheOtherTypesFilesCached()
    {
        // The last probed type of the file: the types before it keep their spans, so their specs are equal.
        GeneratorRunResult result = RunAfterEditingTheProbes("Inc3", "[Probe] public string Greet(", "[Probe(\"greet2\")] public string Greet(");
        var reasons = result.TrackedSteps[ProbeGenerator.Steps.ProbedTypes].SelectMany(r => r.Outputs)
            .Select(o => (((ProbedType)o.Value).Key, o.Reason)).ToList();
        Assert.Contains(reasons, r => r.Key == "Shapes_Greeter" && r.Reason == IncrementalStepRunReason.Modified);
        Assert.All(reasons.Where(r => r.Key != "Shapes_Greeter"), r => Assert.True(r.Reason is IncrementalStepRunReason.Unchanged or IncrementalStepRunReason.Cached, $"{r.Key} re-ran with {r.Reason}"));
    }

    /// <summary>Runs the generator on the shapes, then again after one text edit of the probes file; the second run's result.</summary>
    private static GeneratorRunResult RunAfterEditingTheProbes(string assemblyName, string find, string replacement)
    {
        CSharpCompilation first = Harness.Compilation(assemblyName, ShapesSource.Probes, ShapesSource.Scenarios);
        GeneratorDriver driver = Harness.Driver(trackSteps: true).RunGenerators(first);
        SyntaxTree old = first.SyntaxTrees.First();
        string text = old.GetText().ToString();
        Assert.Contains(find, text);
        SyntaxTree edited = old.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(text.Replace(find, replacement)));
        driver = driver.RunGenerators(first.ReplaceSyntaxTree(old, edited));
        return driver.GetRunResult().Results.Single();
    }
}
