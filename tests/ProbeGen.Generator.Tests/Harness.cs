using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

// The tests share the process-wide probe catalog; one at a time keeps their hits apart.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace ProbeGen.Generator.Tests;

/// <summary>Runs the real generator on real source and compiles the result with the real compiler.</summary>
internal static class Harness
{
    public static readonly CSharpParseOptions ParseOptions = CSharpParseOptions.Default
        .WithLanguageVersion(LanguageVersion.Preview)
        .WithFeatures([new("InterceptorsNamespaces", "ProbeGen.Generated")]);

    private static readonly ImmutableArray<MetadataReference> References =
        [.. Basic.Reference.Assemblies.Net100.References.All, MetadataReference.CreateFromFile(typeof(ProbeSite).Assembly.Location)];

    public static CSharpCompilation Compilation(string assemblyName, params string[] sources) =>
        CSharpCompilation.Create(assemblyName,
            sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"/src/{assemblyName}/File{i}.cs")),
            References,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    public static GeneratorDriver Driver(bool trackSteps = false) =>
        CSharpGeneratorDriver.Create([new ProbeGenerator().AsSourceGenerator()], parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: trackSteps));

    /// <summary>Runs the generator: the output compilation and the generator's own diagnostics.</summary>
    public static (Compilation Output, ImmutableArray<Diagnostic> Diagnostics, GeneratorDriverRunResult Result) Run(string assemblyName, params string[] sources)
    {
        CSharpCompilation input = Compilation(assemblyName, sources);
        GeneratorDriver driver = Driver().RunGeneratorsAndUpdateCompilation(input, out Compilation output, out ImmutableArray<Diagnostic> diagnostics);
        return (output, diagnostics, driver.GetRunResult());
    }

    /// <summary>Generates, compiles with no warning allowed, and loads the assembly into this process.</summary>
    public static Assembly CompileAndLoad(string assemblyName, params string[] sources)
    {
        var (output, generatorDiagnostics, _) = Run(assemblyName, sources);
        Assert.Empty(generatorDiagnostics);
        using var image = new MemoryStream();
        var emit = output.Emit(image);
        var problems = emit.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning).ToArray();
        Assert.True(problems.Length == 0, "the generated program does not compile cleanly:\n" + string.Join("\n", problems.Select(d => d.ToString())));
        Assert.True(emit.Success);
        return Assembly.Load(image.ToArray());
    }

    /// <summary>
    /// The repository root, found from the test's output folder (artifacts/ sits in the root).
    /// Not from [CallerFilePath]: CI builds map source paths to /_/ for determinism.
    /// </summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ProbeGen.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"no ProbeGen.sln above {AppContext.BaseDirectory}");
    }

    public static string GeneratedSource(GeneratorDriverRunResult result, string hintNameEnd) =>
        result.Results.Single().GeneratedSources.Single(s => s.HintName.EndsWith(hintNameEnd, StringComparison.Ordinal)).SourceText.ToString();
}

/// <summary>Records every hit of the probes matching a pattern, as plain data.</summary>
internal sealed class Recorder : IDisposable
{
    private readonly ProbeAttachment _attachment;

    public Recorder(string pattern) =>
        _attachment = Probes.Attach(pattern, (in ProbeHit hit) =>
        {
            var args = new object?[hit.ArgumentCount];
            for (int i = 0; i < args.Length; i++)
                args[i] = hit.GetArgument(i);
            lock (Hits)
                Hits.Add(new Hit(hit.Probe.Id, hit.Point, args, hit.ReturnValue, hit.Exception, hit.ElapsedNanoseconds, hit.Probe));
        });

    public List<Hit> Hits { get; } = [];

    public IReadOnlyList<Hit> Of(string id)
    {
        lock (Hits)
            return Hits.Where(h => h.Id == id).ToList();
    }

    public void Dispose() => _attachment.Dispose();
}

internal sealed record Hit(string Id, ProbePoint Point, object?[] Args, object? Return, Exception? Exception, long ElapsedNs, ProbeDescriptor Probe);
