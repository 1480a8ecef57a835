using System;
using System.Linq;
using System.Reflection;
using System.Threading.Tasks;
using Xunit;

namespace ProbeGen.Generator.Tests;

/// <summary>Compiles <see cref="ShapesSource"/> once, with the generator, and loads it into this process.</summary>
public sealed class ShapesFixture
{
    public ShapesFixture() => Assembly = Harness.CompileAndLoad("Shapes", ShapesSource.Probes, ShapesSource.Scenarios);

    public Assembly Assembly { get; }

    public object? Call(string scenario) => Assembly.GetType("Shapes.Scenarios")!.GetMethod(scenario)!.Invoke(null, null);
}

/// <summary>Each shape compiles with no warnings and fires exactly the hits it should.</summary>
public class CompileAndRunTests(ShapesFixture shapes) : IClassFixture<ShapesFixture>
{
    [Fact]
    public void StaticProbesFireWithTheirArguments()
    {
        using var recorder = new Recorder("st:*");
        using var nested = new Recorder("nested:*");
        shapes.Call("Statics");

        Hit values = Assert.Single(recorder.Of("st:Values"));
        Assert.Equal(ProbePoint.Fire, values.Point);
        Assert.Equal([7, 19.99m, "ada", "(1,2)", null, "maybe", "Green"], values.Args.Select(a => a is null or int or decimal or string ? a : a.ToString()));
        Assert.Equal(["i", "d", "s", "p", "n", "maybe", "c"], values.Probe.Parameters.Select(p => p.Name));
        Assert.Equal(["int", "decimal", "string", "Shapes.Point", "int?", "string?", "Shapes.Color"], values.Probe.Parameters.Select(p => p.Type));
        Assert.Equal(ProbeKind.Static, values.Probe.Kind);
        Assert.EndsWith("File0.cs", values.Probe.File);
        Assert.True(values.Probe.Line > 0);

        Hit withIn = Assert.Single(recorder.Of("st:in_param"));
        Assert.Equal("(3,4)", withIn.Args[0]!.ToString());
        Assert.Equal(long.MaxValue, withIn.Args[1]);
        Assert.Empty(Assert.Single(recorder.Of("st:NoArgs")).Args);
        Assert.Equal((byte)255, Assert.Single(nested.Of("nested:Deep")).Args[0]);
        Assert.Equal(42, nested.Of("nested:nested_method")[1].Return);  // a method probe in a nested type
    }

    [Fact]
    public void SyncMethodProbesFireEntryAndReturn()
    {
        using var recorder = new Recorder("m:*");
        var results = (object[])shapes.Call("Sync")!;
        Assert.Equal([5, 3.5, "a!", "abcd"], results);

        var add = recorder.Of("m:Add");
        Assert.Equal([ProbePoint.Entry, ProbePoint.Return], add.Select(h => h.Point));
        Assert.Equal([2, 3], add[0].Args);
        Assert.Equal(5, add[1].Return);
        Assert.Null(add[1].Exception);
        Assert.Equal(3.5, recorder.Of("m:add_double")[1].Return);

        var concat = recorder.Of("m:Concat");
        Assert.Equal(4, concat.Count);
        Assert.Equal("a", concat[0].Args[0]);
        Assert.Equal("!", concat[0].Args[1]);  // the default value, filled in at the call site
        Assert.Equal(["c", "d"], (string[])concat[2].Args[2]!);
        Assert.Equal("abcd", concat[3].Return);
    }

    [Fact]
    public void VoidMethodFiresAReturnWithoutValue()
    {
        using var recorder = new Recorder("m:Nothing");
        shapes.Call("Void");
        var hits = recorder.Of("m:Nothing");
        Assert.Equal([ProbePoint.Entry, ProbePoint.Return], hits.Select(h => h.Point));
        Assert.Null(hits[1].Return);
        Assert.Null(hits[1].Probe.ReturnType);
    }

    [Fact]
    public void ExceptionsAreReportedAndRethrownUnchanged()
    {
        using var recorder = new Recorder("m:Fail");
        var thrown = Assert.IsType<InvalidOperationException>(shapes.Call("Throws"));
        Assert.Equal("fail 9", thrown.Message);
        // The stack trace still starts in the probed method: the exception was never rethrown.
        Assert.Contains("Calc.Fail", thrown.StackTrace!.Split('\n')[0]);
        Hit ret = recorder.Of("m:Fail")[1];
        Assert.Same(thrown, ret.Exception);
        Assert.Null(ret.Return);
    }

    [Fact]
    public void GenericMethodsAndGenericTypes()
    {
        using var m = new Recorder("m:Echo");
        using var g = new Recorder("g:*");
        var results = (object[])shapes.Call("Generics")!;
        Assert.Equal([42, "text", "boxed", 5, 5], results);
        var echo = m.Of("m:Echo");
        Assert.Equal([42, 42, "text", "text"], echo.Select(h => h.Point == ProbePoint.Entry ? h.Args[0] : h.Return));
        Assert.Equal(["boxed", 5], g.Of("g:Get").Where(h => h.Point == ProbePoint.Return).Select(h => h.Return));
        Assert.Equal(5, g.Of("g:Map")[1].Return);
        Assert.Equal("T", g.Of("g:Get")[0].Probe.ReturnType);
    }

    [Fact]
    public void RefAndOutValuesAreReportedAtReturn()
    {
        using var recorder = new Recorder("m:TryParse");
        var results = (object[])shapes.Call("RefOut")!;
        Assert.Equal([true, 105, 11], results);
        var hits = recorder.Of("m:TryParse");
        Assert.Equal(["5", 0, 10, 100], hits[0].Args);     // entry: out not assigned yet, ref as passed
        Assert.Equal(["5", 105, 11, 100], hits[1].Args);   // return: out and ref as the method left them
        Assert.Equal(true, hits[1].Return);
    }

    [Fact]
    public async Task AwaitablesFireReturnWhenTheyComplete()
    {
        using var recorder = new Recorder("m:*");
        var results = await (Task<object?[]>)shapes.Call("Async")!;
        Assert.Equal(42, results[0]);
        var later = Assert.IsType<FormatException>(results[1]);
        var now = Assert.IsType<ArgumentException>(results[2]);
        Assert.Equal([2, 3], results[3..5]);

        Hit slow = recorder.Of("m:SlowAsync")[1];
        Assert.Equal(42, slow.Return);
        Assert.True(slow.ElapsedNs >= 4_000_000, $"SlowAsync awaits 5 ms but its return hit says {slow.ElapsedNs} ns");
        Assert.Same(later, recorder.Of("m:FailLaterAsync")[1].Exception);
        Assert.Same(now, recorder.Of("m:FailNow")[1].Exception);
        Assert.Equal(2, recorder.Of("m:FastValue")[1].Return);
        Assert.Equal(3, recorder.Of("m:SlowValue")[1].Return);
        Assert.Equal([ProbePoint.Entry, ProbePoint.Return], recorder.Of("m:PlainValueTask").Select(h => h.Point));
        Assert.Equal([ProbePoint.Entry, ProbePoint.Return], recorder.Of("m:PlainTask").Select(h => h.Point));
        Assert.Equal("int", recorder.Of("m:SlowAsync")[0].Probe.ReturnType);
    }

    [Fact]
    public void StructReceiversExtensionsAndVirtualCalls()
    {
        using var s = new Recorder("s:*");
        using var ext = new Recorder("ext:*");
        using var m = new Recorder("m:Virt");
        var results = (object[])shapes.Call("Receivers")!;
        // The interceptor takes the struct by reference: the caller's copy is the one mutated.
        Assert.Equal([5, 5, 5, 8, 10, "derived", "base"], results);
        Assert.Equal([2, 5], s.Of("s:Increment").Where(h => h.Point == ProbePoint.Return).Select(h => h.Return));
        Assert.Equal(5, s.Of("s:Peek")[1].Return);
        Assert.Equal(4, ext.Of("ext:Twice").Count);
        // The call on a Derived reaches its unprobed override: only the call that runs Calc.Virt fires.
        Assert.Equal(["base"], m.Of("m:Virt").Where(h => h.Point == ProbePoint.Return).Select(h => h.Return));
    }

    [Fact]
    public void CallsThroughAnInterfaceFireButADelegateDoesNot()
    {
        using var recorder = new Recorder("i:*");
        Assert.Equal("hi x|hi y|hi z", shapes.Call("ThroughInterface"));
        Assert.Equal(["x", "z"], recorder.Of("i:Greet").Where(h => h.Point == ProbePoint.Entry).Select(h => h.Args[0]));
    }

    [Fact]
    public void TheCatalogListsEveryProbeOfTheAssembly()
    {
        shapes.Call("Void");
        var ids = ProbeCatalog.All.Where(p => p.Assembly == "Shapes").Select(p => p.Id).ToHashSet();
        foreach (string id in new[] { "st:Values", "st:in_param", "st:NoArgs", "nested:Deep", "m:Add", "m:add_double", "m:SlowAsync", "g:Get", "g:Map", "ext:Twice", "s:Increment", "i:Greet" })
            Assert.Contains(id, ids);
    }
}
