using System.Linq;
using Microsoft.CodeAnalysis;
using Xunit;

namespace ProbeGen.Generator.Tests;

/// <summary>Every unsupported shape gets its own PG0xxx at the right place, naming the problem and the fix.</summary>
public class DiagnosticTests
{
    private static Diagnostic Single(string source, string id)
    {
        var (_, diagnostics, _) = Harness.Run("Diag", "using ProbeGen;\nusing System;\n" + source);
        Assert.NotEmpty(diagnostics);
        Diagnostic d = Assert.Single(diagnostics, x => x.Id == id);
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.StartsWith("https://", d.Descriptor.HelpLinkUri);
        return d;
    }

    private static int Line(Diagnostic d) => d.Location.GetLineSpan().StartLinePosition.Line + 1 - 2;

    [Fact]
    public void PG0001_StaticProbeThatForgotPartial()
    {
        var d = Single("""
            static partial class P
            {
                [Probe] public static void X(int a);
            }
            """, "PG0001");
        Assert.Contains("'partial'", d.GetMessage());
        Assert.Equal(3, Line(d));
    }

    [Fact]
    public void PG0010_AbstractOrExternMethodProbe()
    {
        var (_, diagnostics, _) = Harness.Run("Diag", """
            using ProbeGen;
            static partial class P
            {
                [Probe] static extern void X();
            }
            abstract class Q
            {
                [Probe] public abstract void Y();
            }
            """);
        Assert.Equal(["extern", "abstract"], diagnostics.Where(d => d.Id == "PG0010").Select(d => d.GetMessage().Split(' ')[5].TrimEnd(';')));
    }

    [Fact]
    public void PG0002_StaticProbeWithAUserBody()
    {
        var d = Single("""
            static partial class P
            {
                [Probe] static partial void X(int a);
                static partial void X(int a) { }
            }
            """, "PG0002");
        Assert.Contains("remove it", d.GetMessage());
    }

    [Fact]
    public void PG0003_StaticProbeReturningAValue()
    {
        var d = Single("""
            static partial class P
            {
                [Probe] public static partial int X(int a);
            }
            """, "PG0003");
        Assert.Contains("'void'", d.GetMessage());
        Assert.Equal(3, Line(d));
    }

    [Theory]
    [InlineData("ref int a", "'ref' parameter")]
    [InlineData("out int a", "'out' parameter")]
    [InlineData("Span<int> a", "ref struct")]
    public void PG0004_UnsupportedParameters(string parameter, string problem)
    {
        var d = Single($$"""
            static partial class P
            {
                [Probe] public static partial void X({{parameter}});
            }
            """, "PG0004");
        Assert.Contains(problem, d.GetMessage());
        Assert.Contains("'a'", d.GetMessage());
    }

    [Fact]
    public void PG0004_UnsupportedParameterOfAMethodProbe()
    {
        var d = Single("""
            class C
            {
                [Probe] public int X(ReadOnlySpan<char> text) => text.Length;
            }
            """, "PG0004");
        Assert.Contains("ref struct", d.GetMessage());
    }

    [Fact]
    public void PG0005_TooManyParameters()
    {
        var d = Single("""
            static partial class P
            {
                [Probe] public static partial void X(int a, int b, int c, int d, int e, int f, int g, int h, int i);
            }
            """, "PG0005");
        Assert.Contains("9 parameters", d.GetMessage());
    }

    [Fact]
    public void PG0006_DuplicateProbeId()
    {
        var d = Single("""
            [ProbeProvider("p")]
            static partial class P
            {
                [Probe("same")] public static partial void X(int a);
                [Probe("same")] public static partial void Y(int a);
            }
            """, "PG0006");
        Assert.Contains("'p:same'", d.GetMessage());
        Assert.Equal(5, Line(d));
    }

    [Fact]
    public void PG0006_AnExplicitDuplicateName()
    {
        var d = Single("""
            class C
            {
                [Probe("add")] public int Add(int a, int b) => a + b;
                [Probe("add")] public double Add(double a, double b) => a + b;
            }
            """, "PG0006");
        Assert.Contains("[Probe(\"name\")]", d.GetMessage());
    }

    [Fact]
    public void OverloadsGetDistinctDefaultNamesAndGenericProvidersAreValid()
    {
        var (output, diagnostics, _) = Harness.Run("Diag", """
            using ProbeGen;
            namespace N;
            public class C
            {
                [Probe] public int Add(int a, int b) => a + b;
                [Probe] public double Add(double a, double b) => a + b;
                [Probe] public bool Add(string s, out int v) { v = 0; return true; }
                [Probe] public int Sub(int a) => a;
                [Probe] public string? Find(string? key) => key;
                [Probe] public string? Find(int? id, bool exact) => null;
                [Probe] public string? Find((int Key, string Value) pair) => null;
                [Probe] public void Set<T1>(int t) { }
                [Probe] public void Set<T1, T2>(int t) { }
                [Probe] public bool Check(string s, out System.Collections.Generic.ICollection<string> errors) { errors = new string[0]; return true; }
                public bool Use() => Check("x", out var e) && e.Count == 0;
            }
            public class Pair<TKey, TValue>
            {
                [Probe] public TKey First(TKey k, TValue v) => k;
            }
            """);
        Assert.Empty(diagnostics);
        // An out parameter of a non-nullable reference type is recorded at entry without a nullability warning.
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning));
        string all = string.Join("\n", output.SyntaxTrees.Select(t => t.ToString()));
        foreach (string id in new[] { "\"Add(int,int)\"", "\"Add(double,double)\"", "\"Add(string,int&)\"", "\"Sub\"", "\"N.Pair<TKey,TValue>\"", "\"Set<T1>(int)\"", "\"Set<T1,T2>(int)\"", "\"Find(string)\"", "\"Find(Nullable<int>,bool)\"", "\"Find(ValueTuple<int,string>)\"" })
            Assert.Contains(id, all);
    }

    [Theory]
    [InlineData("[Probe(\"a:b\")]", "name")]
    [InlineData("[Probe(Provider = \"has space\")]", "provider")]
    [InlineData("[Probe(\"\")]", "name")]
    public void PG0007_InvalidIds(string attribute, string part)
    {
        var d = Single($$"""
            static partial class P
            {
                {{attribute}} public static partial void X(int a);
            }
            """, "PG0007");
        Assert.Contains(part, d.GetMessage());
    }

    [Fact]
    public void PG0008_GenericStaticProbe()
    {
        Single("""
            static partial class P<T>
            {
                [Probe] public static partial void X(int a);
            }
            """, "PG0008");
    }

    [Fact]
    public void PG0009_PrivateMethodProbe()
    {
        var d = Single("""
            class C
            {
                [Probe] private int X(int a) => a;
                public int Y() => X(1);
            }
            """, "PG0009");
        Assert.Contains("internal or public", d.GetMessage());
    }

    [Fact]
    public void PG0009_PrivateParameterType()
    {
        var d = Single("""
            static partial class P
            {
                private sealed class Secret { }
                [Probe] static partial void X(Secret s);
            }
            """, "PG0009");
        Assert.Contains("Secret", d.GetMessage());
    }

    [Fact]
    public void PG0010_RefReturningMethodProbe()
    {
        var d = Single("""
            class C
            {
                private int _x;
                [Probe] public ref int X() => ref _x;
            }
            """, "PG0010");
        Assert.Contains("ref-returning", d.GetMessage());
    }

    [Fact]
    public void ValidProbesReportNothing()
    {
        var (output, diagnostics, _) = Harness.Run("Clean", ShapesSource.Probes, ShapesSource.Scenarios);
        Assert.Empty(diagnostics);
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning));
    }
}
