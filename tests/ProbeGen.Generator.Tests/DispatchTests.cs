using System;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace ProbeGen.Generator.Tests;

/// <summary>
/// Calls through interfaces and virtual members fire exactly when, at run time, they reach the
/// probed method; calls from another assembly reach the same site.
/// </summary>
public class DispatchTests
{
    private const string Library = """
        using System;
        using System.Collections.Generic;
        using System.Threading.Tasks;
        using ProbeGen;

        namespace D;

        public interface IRepo { int Get(int id); }
        public interface IFinder<T> { T Find(T key); }
        public interface INamed { string Name(); }
        public interface IGreet { [Probe(Provider = "dim")] string Hello() => "dim"; }
        public interface IAsyncRepo { Task<int> LoadAsync(int id); }
        public abstract class Shape { public abstract double Area(); public virtual string Kind() => "shape"; }

        [ProbeProvider("d")]
        public class Repo : IRepo { [Probe] public int Get(int id) => id * 2; }
        public class OtherRepo : IRepo { public int Get(int id) => -1; }
        public class SubRepo : Repo { }
        public class Reimplemented : Repo, IRepo { public new int Get(int id) => 7; }

        [ProbeProvider("d")]
        public class Finder : IFinder<int> { [Probe] public int Find(int key) => key + 1; }

        [ProbeProvider("d")]
        public class Named : INamed { [Probe] string INamed.Name() => "explicit"; }

        [ProbeProvider("d")]
        public class Square : Shape
        {
            [Probe] public override double Area() => 4;
            [Probe] public override string Kind() => "square";
        }
        public class BigSquare : Square { public override double Area() => 16; }
        public class Doubled : Square { public override double Area() => base.Area() * 2; }

        [ProbeProvider("d")]
        public sealed class Handle : IDisposable { [Probe] public void Dispose() { } }

        [ProbeProvider("meter")]
        public struct Meter : IRepo { [Probe] public int Get(int id) => id + 100; }

        [ProbeProvider("d")]
        internal sealed class HiddenRepo : IAsyncRepo { [Probe] public async Task<int> LoadAsync(int id) { await Task.Yield(); return id * 10; } }

        public class Greeter : IGreet { }
        public class OwnGreeter : IGreet { public string Hello() => "own"; }

        public static class Factory
        {
            public static IAsyncRepo AsyncRepo() => new HiddenRepo();
            public static IRepo[] Repos() => [new Repo(), new OtherRepo(), new SubRepo(), new Reimplemented(), new Meter()];
        }
        """;

    private const string Calls = """
        using System;
        using System.Collections.Generic;
        using System.Linq;
        using D;

        namespace D.Calls;

        public static class Run
        {
            public static object[] All()
            {
                var r = new List<object>();
                foreach (IRepo repo in Factory.Repos())
                    r.Add(repo.Get(1));
                IFinder<int> finder = new Finder();
                r.Add(finder.Find(1));
                INamed named = new Named();
                r.Add(named.Name());
                foreach (Shape s in new Shape[] { new Square(), new BigSquare() })
                {
                    r.Add(s.Area());
                    r.Add(s.Kind());
                }
                // Doubled's override runs, and its base call is not intercepted (PG1008 says so).
                Shape doubled = new Doubled();
                r.Add(doubled.Area());
                // A constrained call on a T that may be a struct is left alone (PG1008 says so).
                r.Add(ByValue(new Meter()));
                IDisposable d = new Handle();
                d.Dispose();
                IGreet a = new Greeter(), b = new OwnGreeter();
                r.Add(a.Hello());
                r.Add(b.Hello());
                r.Add(Constrained(new Repo()));
                r.Add(Factory.AsyncRepo().LoadAsync(3).GetAwaiter().GetResult());
                // An enumerator's Dispose cannot reach Handle.Dispose: it is left alone.
                using (IEnumerator<int> e = new List<int> { 1 }.GetEnumerator()) { e.MoveNext(); }
                Func<int, int> viaDelegate = new Repo().Get;
                r.Add(viaDelegate(9));
                return r.ToArray();
            }

            public static int Constrained<T>(T repo) where T : class, IRepo => repo.Get(5);

            public static int ByValue<T>(T repo) where T : struct, IRepo => repo.Get(7);
        }
        """;

    private static readonly object[] Expected = [2, -1, 2, 7, 101, 2, "explicit", 4.0, "square", 16.0, "square", 8.0, 107, "dim", "own", 10, 30, 18];

    [Fact]
    public void InOneAssemblyEveryDispatchShapeFiresExactlyWhenItReachesTheProbe()
    {
        Assembly assembly = Harness.CompileAndLoad("DispatchOne", Library, Calls);
        AssertHits(() => assembly.GetType("D.Calls.Run")!.GetMethod("All")!.Invoke(null, null), "DispatchOne", "DispatchOne");
    }

    [Fact]
    public void FromAnotherAssemblyCallsReachTheSameSites()
    {
        (Assembly library, Assembly calls) = CompileTwo("DispatchLib", "DispatchApp");
        AssertHits(() => calls.GetType("D.Calls.Run")!.GetMethod("All")!.Invoke(null, null), "DispatchLib", "DispatchApp");

        // One probe, one catalog entry, wherever its call sites are.
        ProbeDescriptor get = Assert.Single(ProbeCatalog.All, p => p.Id == "d:Get" && p.Assembly == "DispatchLib");
        Assert.Contains(get.CallSites, c => c.Assembly == "DispatchApp" && c.Count == 2);
        ProbeDescriptor handle = Assert.Single(ProbeCatalog.All, p => p.Id == "d:Dispose" && p.Assembly == "DispatchLib");
        Assert.Equal([new ProbeCallSites("DispatchApp", 1)], handle.CallSites);
        _ = library;
    }

    [Fact]
    public void DisabledDispatchingCallsStillRunTheRightMethods()
    {
        Assembly assembly = Harness.CompileAndLoad("DispatchOff", Library, Calls);
        Assert.Equal(Expected, (object[])assembly.GetType("D.Calls.Run")!.GetMethod("All")!.Invoke(null, null)!);
    }

    [Fact]
    public void APopularMemberIsInterceptedOnlyWhereItsReceiverCouldBeAProbedType()
    {
        var (_, _, result) = Harness.Run("DispatchPrecision", Library, Calls);
        string all = string.Join("\n", result.Results.Single().GeneratedSources.Select(s => s.SourceText.ToString()));
        // IDisposable.Dispose is intercepted once (the IDisposable receiver), never on IEnumerator<int>.
        Assert.Equal(1, CountOf(all, "// /src/DispatchPrecision/File1.cs(" + LineOf(Calls, "d.Dispose();")));
        Assert.DoesNotContain("File1.cs(" + LineOf(Calls, "using (IEnumerator<int>"), all);
    }

    private static void AssertHits(Func<object?> run, string declaring, string calling)
    {
        using var d = new Recorder("d:*");
        using var dim = new Recorder("dim:*");
        using var meter = new Recorder("meter:*");
        object[] results = (object[])run()!;
        Assert.Equal(Expected, results);
        Assert.All(d.Hits.Concat(dim.Hits).Concat(meter.Hits), h => Assert.Equal(declaring, h.Probe.Assembly));

        int[] Entries(Recorder r, string id) => r.Of(id).Where(h => h.Point == ProbePoint.Entry).Select(h => (int)h.Args[0]!).ToArray();
        object?[] Returns(Recorder r, string id) => r.Of(id).Where(h => h.Point == ProbePoint.Return).Select(h => h.Return).ToArray();

        // Repo and SubRepo reach Repo.Get; OtherRepo, the re-implementation and the delegate do not; T : class, IRepo does.
        Assert.Equal([1, 1, 5], Entries(d, "d:Get"));
        Assert.Equal([1], Entries(meter, "meter:Get"));
        Assert.Equal([1], Entries(d, "d:Find"));
        Assert.Equal(["explicit"], Returns(d, "d:INamed.Name"));
        // BigSquare overrides Area without a probe; it inherits Kind.
        Assert.Equal([4.0], Returns(d, "d:Area"));
        Assert.Equal(["square", "square"], Returns(d, "d:Kind"));
        Assert.Single(d.Of("d:Dispose"), h => h.Point == ProbePoint.Entry);
        Assert.Equal(["dim"], Returns(dim, "dim:Hello"));
        // The return hit of an awaitable fires from the task's continuation, which may run after the caller resumed.
        System.Threading.SpinWait.SpinUntil(() => Returns(d, "d:LoadAsync").Length > 0, TimeSpan.FromSeconds(5));
        Assert.Equal([30], Returns(d, "d:LoadAsync"));
        _ = calling;
    }

    [Fact]
    public void OneSourceFileCompiledIntoTwoAssembliesGivesEachItsOwnProbe()
    {
        const string shared = """
            namespace S;
            [ProbeGen.ProbeProvider("linked")]
            internal static class Checks { [ProbeGen.Probe] public static int Twice(int x) => 2 * x; }
            """;
        (Assembly library, Assembly app) = CompileTwo("LinkedLib", "LinkedApp",
            [shared, "namespace S; public static class LibApi { public static int Run() => Checks.Twice(1); }"],
            [shared, "namespace S; public static class AppApi { public static int Run() => Checks.Twice(2) + LibApi.Run(); }"]);
        using var recorder = new Recorder("linked:*");
        Assert.Equal(6, app.GetType("S.AppApi")!.GetMethod("Run")!.Invoke(null, null));
        Assert.Equal(["LinkedApp 2", "LinkedLib 1"],
            recorder.Hits.Where(h => h.Point == ProbePoint.Entry).Select(h => h.Probe.Assembly + " " + h.Args[0]));
        _ = library;
    }

    private static (Assembly Library, Assembly Calls) CompileTwo(string libraryName, string callsName) =>
        CompileTwo(libraryName, callsName, [Library], [Calls]);

    private static (Assembly Library, Assembly Calls) CompileTwo(string libraryName, string callsName, string[] librarySources, string[] callsSources)
    {
        var (libraryOutput, libraryDiagnostics, _) = Harness.Run(libraryName, librarySources);
        Assert.Empty(libraryDiagnostics);
        byte[] libraryImage = Emit(libraryOutput);

        CSharpCompilation callsInput = Harness.Compilation(callsName, callsSources).AddReferences(MetadataReference.CreateFromImage(libraryImage));
        Harness.Driver().RunGeneratorsAndUpdateCompilation(callsInput, out Compilation callsOutput, out var callsDiagnostics);
        Assert.Empty(callsDiagnostics);
        byte[] callsImage = Emit(callsOutput);

        // Both in one load context, so the calling assembly resolves the library as an app would.
        var context = new AssemblyLoadContext(callsName + "Context");
        Assembly library = context.LoadFromStream(new MemoryStream(libraryImage));
        Assembly calls = context.LoadFromStream(new MemoryStream(callsImage));
        return (library, calls);
    }

    private static byte[] Emit(Compilation compilation)
    {
        using var image = new MemoryStream();
        var emit = compilation.Emit(image);
        var problems = emit.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning).ToArray();
        Assert.True(problems.Length == 0, "does not compile cleanly:\n" + string.Join("\n", problems.Select(d => d.ToString())));
        return image.ToArray();
    }

    private static int LineOf(string source, string text) =>
        source.Split('\n').Select((line, i) => (line, i)).First(x => x.line.Contains(text, StringComparison.Ordinal)).i + 1;

    private static int CountOf(string text, string part)
    {
        int count = 0;
        for (int at = text.IndexOf(part, StringComparison.Ordinal); at >= 0; at = text.IndexOf(part, at + 1, StringComparison.Ordinal))
            count++;
        return count;
    }
}
