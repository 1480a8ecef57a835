using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace ProbeGen.Benchmarks;

/// <summary>
/// What the generator adds to a build: a synthetic library of several hundred method probes, each
/// called directly, through its interface and through a virtual base, compiled with the real
/// compiler with and without the real generator, in the same run.
/// </summary>
internal static class GeneratorCost
{
    /// <summary>Two probes per service: one reached through an interface, one through a virtual base.</summary>
    public const int Probes = 600;
    private const int Services = Probes / 2;
    private const int Runs = 5;

    public static IEnumerable<Row> Measure(string repositoryRoot)
    {
        IIncrementalGenerator generator = LoadGenerator(repositoryRoot);
        var parse = CSharpParseOptions.Default.WithLanguageVersion(LanguageVersion.Preview)
            .WithFeatures([new("InterceptorsNamespaces", "ProbeGen.Generated")]);
        SyntaxTree[] trees = [.. Source().Select((s, i) => CSharpSyntaxTree.ParseText(s, parse, path: $"/src/Gen/File{i}.cs"))];
        MetadataReference[] references =
        [
            .. Basic.Reference.Assemblies.Net100.References.All,
            MetadataReference.CreateFromFile(typeof(ProbeSite).Assembly.Location),
        ];
        var options = new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable);

        double plain = double.MaxValue, generated = double.MaxValue, generatorOnly = double.MaxValue;
        int interceptors = 0;
        for (int run = 0; run < Runs; run++)
        {
            // A fresh compilation each time, as a clean build has.
            var clock = Stopwatch.StartNew();
            Emit(CSharpCompilation.Create("Gen", trees, references, options));
            plain = Math.Min(plain, clock.Elapsed.TotalMilliseconds);

            clock.Restart();
            CSharpCompilation input = CSharpCompilation.Create("Gen", trees, references, options);
            GeneratorDriver driver = CSharpGeneratorDriver.Create([generator.AsSourceGenerator()], parseOptions: parse)
                .RunGeneratorsAndUpdateCompilation(input, out Compilation output, out ImmutableArray<Diagnostic> diagnostics);
            double generating = clock.Elapsed.TotalMilliseconds;
            Emit(output);
            generated = Math.Min(generated, clock.Elapsed.TotalMilliseconds);
            generatorOnly = Math.Min(generatorOnly, generating);
            if (diagnostics.Length > 0)
                throw new InvalidOperationException("the generator reported: " + diagnostics[0]);
            interceptors = driver.GetRunResult().GeneratedTrees.Sum(t => CountOf(t.ToString(), "InterceptsLocation("));
        }
        if (interceptors != Services * 3)
            throw new InvalidOperationException($"{interceptors} call sites were intercepted; expected {Services * 3}");

        yield return new Row("generator_cost_600_probes", generated * 1e6, "the same compile without the generator", plain * 1e6, generated / plain,
            $"informational (build with/without; generator alone {generatorOnly:F0} ms for {Probes} probes, {interceptors} intercepted calls)", null, 0, RatioOf: "compile with the generator / without");
    }

    private static void Emit(Compilation compilation)
    {
        using var image = new MemoryStream();
        var result = compilation.Emit(image);
        if (!result.Success)
            throw new InvalidOperationException("the synthetic library does not compile: " + result.Diagnostics.First(d => d.Severity == DiagnosticSeverity.Error));
    }

    /// <summary>Probed services behind interfaces and a virtual base, in 20 files, with callers of each and unrelated calls.</summary>
    private static IEnumerable<string> Source()
    {
        const int files = 20, perFile = Services / files;
        for (int f = 0; f < files; f++)
        {
            var text = new StringBuilder("using System.Threading.Tasks;\nusing ProbeGen;\nnamespace Gen;\n");
            for (int i = 0; i < perFile; i++)
            {
                int n = f * perFile + i;
                text.Append($$"""
                    public interface IService{{n}} { int Work(int x, string s); }
                    public abstract class Base{{n}} { public abstract Task<int> RunAsync(int x); }
                    [ProbeProvider("gen{{n}}")]
                    public sealed class Service{{n}} : Base{{n}}, IService{{n}}
                    {
                        [Probe] public int Work(int x, string s) => x + s.Length;
                        [Probe] public override Task<int> RunAsync(int x) => Task.FromResult(x);
                    }
                    public static class Caller{{n}}
                    {
                        // Ordinary calls that reach no probe, as most of a real program's calls are.
                        public static string Unrelated(System.Collections.Generic.List<int> list, string s)
                        {
                            list.Add(s.Length);
                            list.Sort();
                            return s.Trim().ToUpperInvariant() + list.Count.ToString() + string.Join(",", list) + s.GetHashCode().ToString();
                        }

                        public static async Task<int> Call(Service{{n}} direct, IService{{n}} viaInterface, Base{{n}} viaBase) =>
                            direct.Work(1, "a") + viaInterface.Work(2, "b") + await viaBase.RunAsync(3) + System.Math.Max(1, 2);
                    }

                    """);
            }
            yield return text.ToString();
        }
    }

    private static IIncrementalGenerator LoadGenerator(string repositoryRoot)
    {
        string bin = Path.Combine(repositoryRoot, "artifacts", "bin", "ProbeGen.Generator");
        string path = new[] { "release", "debug" }.Select(c => Path.Combine(bin, c, "ProbeGen.Generator.dll")).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException($"build the generator first: no ProbeGen.Generator.dll under {bin}");
        Type type = Assembly.LoadFrom(path).GetType("ProbeGen.Generator.ProbeGenerator", throwOnError: true)!;
        return (IIncrementalGenerator)Activator.CreateInstance(type)!;
    }

    private static int CountOf(string text, string part)
    {
        int count = 0;
        for (int at = text.IndexOf(part, StringComparison.Ordinal); at >= 0; at = text.IndexOf(part, at + 1, StringComparison.Ordinal))
            count++;
        return count;
    }
}
