using System.Threading.Tasks;
using ProbeGen.Analyzers.CodeFixes;
using Xunit;
using V = ProbeGen.Analyzers.Tests.Verify<ProbeGen.Analyzers.HotPathAnalyzer>;

namespace ProbeGen.Analyzers.Tests;

public class HotPathTests
{
    [Fact]
    public Task PG1001_BlockingCallsInALambdaHandler() => V.Analyze("""
        class C
        {
            static readonly object Gate = new();
            static readonly SemaphoreSlim Semaphore = new(1);
            void M(Task<int> task, Stream stream)
            {
                using var a = Probes.Attach("orders:*", (in ProbeHit hit) =>
                {
                    {|PG1001:Thread.Sleep(1)|};
                    {|PG1001:task.Wait()|};
                    int r = {|PG1001:task.Result|};
                    int s = {|PG1001:task.GetAwaiter().GetResult()|};
                    lock ({|PG1001:Gate|}) { }
                    {|PG1001:Semaphore.Wait()|};
                    {|PG1001:Console.WriteLine("hit")|};
                    {|PG1001:File.ReadAllText("x")|};
                    {|PG1001:stream.Flush()|};
                });
            }
        }
        """);

    [Fact]
    public Task PG1001_TheSameCallsOutsideAHandlerOrQueuedElsewhereDoNotWarn() => V.Analyze("""
        class C
        {
            void M(Task<int> task)
            {
                Thread.Sleep(1);
                task.Wait();
                Console.WriteLine("not a handler");
                var buffer = new StringWriter();
                using var a = Probes.Attach("orders:*", (in ProbeHit hit) =>
                {
                    ThreadPool.UnsafeQueueUserWorkItem(static _ => Console.WriteLine("queued"), null);
                    buffer.Write('x');
                });
            }
        }
        """);

    [Fact]
    public Task PG1001_InAConsumerOverrideAndOneLevelDeep() => V.Analyze("""
        sealed class Slow : ProbeConsumer
        {
            protected override void OnHit(in ProbeHit hit)
            {
                Log();
            }

            private static void Log() => {|PG1001:Thread.Sleep(5)|};
        }
        """);

    [Fact]
    public Task PG1001_AMethodGroupHandler() => V.Analyze("""
        class C
        {
            void M() { using var a = Probes.Attach("orders:*", OnHit); }

            static void OnHit(in ProbeHit hit) => {|PG1001:Thread.Sleep(1)|};
        }
        """);

    [Fact]
    public Task PG1002_GracePeriodWaitsInAHandler() => V.Analyze("""
        class C
        {
            ProbeAttachment? _other;
            void M(SrcuDomain domain)
            {
                using var a = Probes.Attach("orders:*", (in ProbeHit hit) =>
                {
                    {|PG1002:_other!.Dispose()|};
                    {|PG1002:domain.Synchronize()|};
                    {|PG1002:Probes.Domain.Barrier()|};
                });
            }
        }
        """);

    [Fact]
    public Task PG1002_DisposeOutsideAHandlerIsFine() => V.Analyze("""
        class C
        {
            void M(ProbeAttachment other)
            {
                other.Dispose();
                using var a = Probes.Attach("orders:*", (in ProbeHit hit) => { _ = other.DetachDeferred(); });
            }
        }
        """);

    [Fact]
    public Task PG1002_FixDetachesDeferred() => V.Fix<DeferredDetachFix>("""
        class C
        {
            ProbeAttachment? _other;
            void M()
            {
                using var a = Probes.Attach("orders:*", (in ProbeHit hit) =>
                {
                    {|PG1002:_other!.Dispose()|};
                });
            }
        }
        """, """
        class C
        {
            ProbeAttachment? _other;
            void M()
            {
                using var a = Probes.Attach("orders:*", (in ProbeHit hit) =>
                {
                    _ = _other!.DetachDeferred();
                });
            }
        }
        """);

    // The built-in handler delegates take 'in' parameters, which the compiler already forbids
    // for async lambdas (CS1988). PG1003 covers any other [ProbeHandler] parameter, such as a
    // wrapper library's, whose delegate could be async.
    private const string Wrapper = """
        static class Hooks
        {
            public static void OnOrder([ProbeHandler] Action<int> handler) { }
        }
        """;

    [Fact]
    public Task PG1003_AsyncHandlers() => V.Analyze(Wrapper + """
        class C
        {
            void M()
            {
                Hooks.OnOrder({|PG1003:async id => await Task.Yield()|});
                Hooks.OnOrder({|PG1003:Handle|});
                Hooks.OnOrder(id => { });
            }

            static async void Handle(int id) => await Task.Yield();
        }
        """);

    [Fact]
    public Task PG1003_FixRemovesAsyncWhenNoAwaitRemains() => V.Fix<RemoveAsyncFix>(Wrapper + """
        class C
        {
            int _hits;
            void M()
            {
                #pragma warning disable CS1998
                Hooks.OnOrder({|PG1003:async id => { _hits++; }|});
            }
        }
        """, Wrapper + """
        class C
        {
            int _hits;
            void M()
            {
                #pragma warning disable CS1998
                Hooks.OnOrder(id => { _hits++; });
            }
        }
        """);

    [Fact]
    public Task PG1004_ThrowsThatLeaveTheHandler() => V.Analyze("""
        class C
        {
            void M()
            {
                using var a = Probes.Attach("orders:*", (in ProbeHit hit) =>
                {
                    if (hit.ArgumentCount == 0)
                        {|PG1004:throw new InvalidOperationException("no args");|}
                    try { throw new FormatException(); } catch (FormatException) { }
                });
            }
            void Outside() => throw new NotSupportedException();
        }
        """);

    [Fact]
    public Task PG1005_PerHitAllocations() => V.Analyze("""
        class C
        {
            string _last = "";
            object? _boxed;
            void M(int[] values)
            {
                using var a = Probes.Attach("orders:*", (in ProbeHit hit) =>
                {
                    int n = hit.ArgumentCount;
                    _last = {|PG1005:$"count {n}"|};
                    _last = {|PG1005:_last + n.ToString()|};
                    _boxed = {|PG1005:n|};
                    _boxed = {|PG1005:values.Where({|PG1005:v => v > n|})|};
                });
            }
        }
        """);
}
