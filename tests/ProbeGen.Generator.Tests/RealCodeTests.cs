using System;
using System.Linq;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.CodeAnalysis;
using Xunit;

namespace ProbeGen.Generator.Tests;

/// <summary>
/// Shapes found by putting a plain [Probe] on every method of a real library: each builds with no
/// error and no workaround, and a probe never changes what the program does.
/// </summary>
public class RealCodeTests
{
    [Fact]
    public void AttributesTheCompilerReadsAtCallSitesAreRestatedOnInterceptors()
    {
        Assembly assembly = Harness.CompileAndLoad("RealAttributes", """
            using System;
            using System.Collections.Generic;
            using System.Diagnostics.CodeAnalysis;
            using ProbeGen;

            namespace R;

            [ProbeProvider("r")]
            public class Cache<TKey, TValue> where TKey : notnull
            {
                private readonly Dictionary<TKey, TValue> _items = new();
                [Probe] public bool TryGet(TKey key, [MaybeNullWhen(false)] out TValue value) => _items.TryGetValue(key, out value);
                [Probe] public void Put(TKey key, TValue value) => _items[key] = value;
                [Probe] [return: NotNullIfNotNull(nameof(fallback))] public string? Name(string? fallback) => fallback;
                [Probe] [RequiresUnreferencedCode("reflects")] public Type? Find(string name) => Type.GetType(name);
                [Probe] public string Create<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] T>() where T : new() => typeof(T).Name;
                [Probe] public int Measure<T>(T item) where T : allows ref struct => 1;
            }

            public static class Use
            {
                [UnconditionalSuppressMessage("Trimming", "IL2026")]
                public static string Run()
                {
                    var cache = new Cache<string, string>();
                    cache.Put("a", "b");
                    // MaybeNullWhen(false): no warning dereferencing value when TryGet returned true.
                    string found = cache.TryGet("a", out string? value) ? value.ToUpperInvariant() : "none";
                    string name = cache.Name("x").ToUpperInvariant();
                    return found + name + cache.Find("System.Int32")?.Name + cache.Create<object>() + cache.Measure(1);
                }
            }
            """);
        using var recorder = new Recorder("r:*");
        Assert.Equal("BXInt32Object1", assembly.GetType("R.Use")!.GetMethod("Run")!.Invoke(null, null));
        Assert.Equal(["r:Put", "r:TryGet", "r:Name", "r:Find", "r:Create", "r:Measure"],
            recorder.Hits.Where(h => h.Point == ProbePoint.Entry).Select(h => h.Id));
        // A value of a type parameter that allows ref structs cannot be kept: recorded as null.
        Assert.Null(recorder.Of("r:Measure")[0].Args[0]);

        var (_, _, result) = Harness.Run("RealAttributesSource", "namespace N; public class C { [ProbeGen.Probe][System.Diagnostics.CodeAnalysis.RequiresUnreferencedCode(\"x\")] public int M() => 1; } public static class U { public static int F() => new C().M(); }");
        string generated = string.Join("\n", result.Results.Single().GeneratedSources.Select(s => s.SourceText.ToString()));
        Assert.Contains("[global::System.Diagnostics.CodeAnalysis.RequiresUnreferencedCodeAttribute(\"x\")]", generated);
    }

    [Fact]
    public void CallsOfMembersGeneratedCodeCannotNameAreLeftAlone()
    {
        // A call through an interface nested privately: the interceptor could not name it.
        Assembly assembly = Harness.CompileAndLoad("Unnameable", """
            using ProbeGen;
            namespace N;
            [ProbeProvider("u")]
            public class Impl : Impl.IHidden
            {
                [Probe] public int Twice() => ((IHidden)this).Get() * 2;
                private interface IHidden { int Get(); }
                [Probe] public int Get() => 3;
            }
            public static class Use { public static int Run() => new Impl().Twice() + new Impl().Get(); }
            """);
        using var recorder = new Recorder("u:*");
        Assert.Equal(9, assembly.GetType("N.Use")!.GetMethod("Run")!.Invoke(null, null));
        Assert.Equal(["u:Twice", "u:Get"], recorder.Hits.Where(h => h.Point == ProbePoint.Entry).Select(h => h.Id));
    }

    [Theory]
    [InlineData("public int P { [Probe] get => 1; }", "a property or indexer accessor")]
    [InlineData("[Probe] public static C operator +(C a, C b) => a;", "an operator")]
    [InlineData("[Probe] public static implicit operator int(C c) => 1;", "an operator")]
    [InlineData("public void M() { [Probe] static int Local() => 1; Local(); }", "a local function")]
    public void MembersThatCannotBeProbedAreReportedNotIgnored(string member, string what)
    {
        var (_, diagnostics, _) = Harness.Run("Ignored", $"using ProbeGen;\npublic class C\n{{\n    {member}\n}}\n");
        Diagnostic d = Assert.Single(diagnostics);
        Assert.Equal("PG0010", d.Id);
        Assert.Contains(what, d.GetMessage());
    }

    [Theory]
    [InlineData("[Probe] public static partial int X(int a);", "PG0003")]
    [InlineData("[Probe] public static partial void X(ref int a);", "PG0004")]
    [InlineData("[Probe] public static partial void X<T>(T a) where T : struct;", "PG0008")]
    public void ARejectedStaticProbeGetsOnlyTheGeneratorsError(string declaration, string id)
    {
        var (output, diagnostics, _) = Harness.Run("Rejected", $"using ProbeGen;\npublic static partial class P\n{{\n    {declaration}\n}}\n");
        Assert.Equal([id], diagnostics.Select(d => d.Id));
        Assert.DoesNotContain(output.GetDiagnostics(), d => d.Severity == DiagnosticSeverity.Error);
    }

    [Fact]
    public void PG0009NamesThePrivateContainingType()
    {
        var (_, diagnostics, _) = Harness.Run("Hidden", """
            using ProbeGen;
            public class Outer
            {
                private class Inner { [Probe] public bool Equals2(int x) => x == 1; }
            }
            """);
        Diagnostic d = Assert.Single(diagnostics);
        Assert.Equal("PG0009", d.Id);
        Assert.Contains("declared in the private type 'Inner'", d.GetMessage());
        Assert.DoesNotContain("'Equals2', which is private", d.GetMessage());
    }

    [Fact]
    public void AProbeDoesNotMakeAFaultedFireAndForgetTaskObserved()
    {
        Assembly assembly = Harness.CompileAndLoad("Unobserved", """
            using System;
            using System.Runtime.CompilerServices;
            using System.Threading.Tasks;
            using ProbeGen;

            namespace U;

            [ProbeProvider("unobserved")]
            public static class Work
            {
                [Probe] public static async Task FailAsync(int i) { await Task.Yield(); throw new InvalidOperationException("unobserved " + i); }

                [MethodImpl(MethodImplOptions.NoInlining)]
                public static void FireAndForget(int count)
                {
                    for (int i = 0; i < count; i++)
                        _ = FailAsync(i);
                }
            }
            """);
        int unobserved = 0;
        void OnUnobserved(object? sender, UnobservedTaskExceptionEventArgs e)
        {
            if (e.Exception.InnerExceptions.Any(x => x.Message.StartsWith("unobserved ", StringComparison.Ordinal)))
                Interlocked.Increment(ref unobserved);
        }
        TaskScheduler.UnobservedTaskException += OnUnobserved;
        try
        {
            using var recorder = new Recorder("unobserved:*");
            assembly.GetType("U.Work")!.GetMethod("FireAndForget")!.Invoke(null, [20]);
            SpinWait.SpinUntil(() => recorder.Of("unobserved:FailAsync").Count(h => h.Point == ProbePoint.Return) == 20, TimeSpan.FromSeconds(10));
            // The return hits still carry the real exception.
            Assert.All(recorder.Of("unobserved:FailAsync").Where(h => h.Point == ProbePoint.Return), h => Assert.IsType<InvalidOperationException>(h.Exception));
            for (int i = 0; i < 5 && Volatile.Read(ref unobserved) < 20; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
            Assert.Equal(20, Volatile.Read(ref unobserved));
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= OnUnobserved;
        }
    }

    private static readonly Lazy<Assembly> s_passThrough = new(() => Harness.CompileAndLoad("PassThrough", """
        using System.Threading.Tasks;
        using ProbeGen;
        namespace P;
        [ProbeProvider("pass")]
        public static class Work
        {
            [Probe] public static Task<int> Pass(Task<int> inner) => inner;
            public static Task<int> Call(Task<int> inner) => Pass(inner);
        }
        """));

    private static Task<int> Pass(Task<int> inner) =>
        (Task<int>)s_passThrough.Value.GetType("P.Work")!.GetMethod("Call")!.Invoke(null, [inner])!;

    [Fact]
    public async Task ACallerThatResumesAfterItsAwaitHasSeenTheReturnHit()
    {
        using var recorder = new Recorder("pass:*");
        var inner = new TaskCompletionSource<int>();
        using var gate = new ManualResetEventSlim();
        // Registered before the call, this continuation runs first on the completing thread and holds
        // it after the task has completed but before the probe's own continuation has run: the window
        // in which a caller checking IsCompleted would resume without the return hit.
        _ = inner.Task.ContinueWith(_ => gate.Wait(), TaskContinuationOptions.ExecuteSynchronously);
        Task<int> returned = Pass(inner.Task);
        Task completer = Task.Run(() => inner.SetResult(5));
        Assert.True(SpinWait.SpinUntil(() => inner.Task.IsCompleted, TimeSpan.FromSeconds(10)));
        bool callerSawCompletion = returned.IsCompleted;
        int returnHits = recorder.Of("pass:Pass").Count(h => h.Point == ProbePoint.Return);
        gate.Set();
        Assert.False(callerSawCompletion && returnHits == 0, "the caller saw the call complete before its return hit was delivered");
        Assert.Equal(5, await returned);
        Assert.Equal(5, Assert.Single(recorder.Of("pass:Pass"), h => h.Point == ProbePoint.Return).Return);
        await completer;
    }

    [Fact]
    public async Task ATaskThatCompletesLaterKeepsItsWholeOutcome()
    {
        using var recorder = new Recorder("pass:*");
        using var cts = new CancellationTokenSource();
        var canceledInner = new TaskCompletionSource<int>();
        Task<int> canceled = Pass(canceledInner.Task);
        cts.Cancel();
        canceledInner.SetCanceled(cts.Token);
        Assert.True(canceled.IsCanceled);
        OperationCanceledException oce = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => canceled);
        Assert.Equal(cts.Token, oce.CancellationToken);

        var faultedInner = new TaskCompletionSource<int>();
        Task<int> faulted = Pass(faultedInner.Task);
        var first = new FormatException("first");
        var second = new InvalidOperationException("second");
        faultedInner.SetException([first, second]);
        Assert.Equal([first, second], faulted.Exception!.InnerExceptions);
        Assert.Same(first, await Assert.ThrowsAsync<FormatException>(() => faulted));

        Hit[] returns = recorder.Of("pass:Pass").Where(h => h.Point == ProbePoint.Return).ToArray();
        Assert.IsType<TaskCanceledException>(returns[0].Exception);
        Assert.Equal([first, second], Assert.IsType<AggregateException>(returns[1].Exception).InnerExceptions);
    }

    [Fact]
    public void ProbeRedactOnParametersAndReturnsReachesTheCatalog()
    {
        Assembly assembly = Harness.CompileAndLoad("Redacted", """
            using System.Threading.Tasks;
            using ProbeGen;
            namespace R;
            [ProbeProvider("redacted")]
            public static partial class Auth
            {
                [Probe] public static partial void Login(string user, [ProbeRedact] string note, string password, [ProbeRedact(false)] string sessionId);
                [Probe] [return: ProbeRedact] public static string Issue(string user) => "tok-" + user;
            }
            """);
        System.Runtime.CompilerServices.RuntimeHelpers.RunModuleConstructor(assembly.ManifestModule.ModuleHandle);
        ProbeDescriptor login = ProbeCatalog.All.Single(p => p.Id == "redacted:Login" && p.Assembly == assembly.GetName().Name);
        Assert.Equal([false, true, true, false], Enumerable.Range(0, 4).Select(login.IsArgumentRedacted));
        Assert.Equal([ProbeRedact.ByName, ProbeRedact.Always, ProbeRedact.ByName, ProbeRedact.Never], login.Parameters.Select(p => p.Redact));
        ProbeDescriptor issue = ProbeCatalog.All.Single(p => p.Id == "redacted:Issue" && p.Assembly == assembly.GetName().Name);
        Assert.True(issue.ReturnRedacted);
        Assert.False(login.ReturnRedacted);
    }
}
