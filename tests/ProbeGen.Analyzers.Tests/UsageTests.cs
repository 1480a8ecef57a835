using System.Threading.Tasks;
using ProbeGen.Analyzers.CodeFixes;
using Xunit;
using V = ProbeGen.Analyzers.Tests.Verify<ProbeGen.Analyzers.UsageAnalyzer>;

namespace ProbeGen.Analyzers.Tests;

public class UsageTests
{
    [Fact]
    public Task PG1006_DiscardedAttachments() => V.Analyze("""
        class C
        {
            void M()
            {
                {|PG1006:Probes.Attach("orders:*", (in ProbeHit hit) => { })|};
                _ = {|PG1006:Probes.Count("orders:*")|};
                using var kept = Probes.Attach("orders:*", (in ProbeHit hit) => { });
                var alsoKept = Probes.Histogram("payments:*");
                alsoKept.Dispose();
                var forgotten = {|PG1006:Probes.Attach("orders:*", (in ProbeHit hit) => { })|};
            }
        }
        """);

    [Fact]
    public Task PG1006_FixAddsAUsingDeclaration() => V.Fix<UsingAttachmentFix>("""
        class C
        {
            void M()
            {
                {|PG1006:Probes.Attach("orders:*", (in ProbeHit hit) => { })|};
            }
        }
        """, """
        class C
        {
            void M()
            {
                using var attachment = Probes.Attach("orders:*", (in ProbeHit hit) => { });
            }
        }
        """);

    [Fact]
    public Task PG1007_ReadGuardNotInAUsing() => V.Analyze("""
        class C
        {
            void M(SrcuDomain domain)
            {
                SrcuReadGuard guard = {|PG1007:domain.Enter()|};
                guard.Dispose();
                using var ok = domain.Enter();
                using (domain.Enter()) { }
                SrcuReadGuard manual = domain.Enter();
                try { } finally { manual.Dispose(); }
            }
        }
        """);

    [Fact]
    public Task PG1008_CallsThatCannotBeIntercepted() => V.Analyze("""
        interface IPayments { int Charge(int amount); }
        class Payments : IPayments
        {
            [Probe] public int Charge(int amount) => amount;
            [Probe] public virtual int Refund(int amount) => amount;
        }
        class Special : Payments
        {
            public override int Refund(int amount) => {|PG1008:base.Refund(amount)|};
        }
        sealed class Handle : System.IDisposable { [Probe] public void Dispose() { } }
        class Caller
        {
            void M(IPayments viaInterface, Payments direct)
            {
                viaInterface.Charge(1);
                Func<int, int> f = {|PG1008:direct.Charge|};
                Func<int, int> g = {|PG1008:viaInterface.Charge|};
                System.Linq.Expressions.Expression<Func<int>> e = () => {|PG1008:direct.Charge(2)|};
                direct.Charge(3);
                using ({|PG1008:new Handle()|}) { }
                using var h = {|PG1008:new Handle()|};
                System.IDisposable d = new Handle();
                d.Dispose();
            }
            int Generic<T>(T payments) where T : IPayments => {|PG1008:payments.Charge(4)|};
            int GenericClass<T>(T payments) where T : class, IPayments => payments.Charge(5);
        }
        """);

    [Fact]
    public Task PG1008_CallsTheCompilerMakesForALanguageConstruct() => V.Analyze("""
        using System.Collections;
        using System.Collections.Generic;
        using System.Runtime.CompilerServices;
        using System.Threading.Tasks;
        class Bag : IEnumerable<int>
        {
            private readonly List<int> _items = new();
            [Probe] public void Add(int item) => _items.Add(item);
            [Probe] public List<int>.Enumerator GetEnumerator() => _items.GetEnumerator();
            IEnumerator<int> IEnumerable<int>.GetEnumerator() => _items.GetEnumerator();
            IEnumerator IEnumerable.GetEnumerator() => _items.GetEnumerator();
        }
        readonly struct Point
        {
            [Probe] public void Deconstruct(out int x, out int y) { x = 1; y = 2; }
        }
        class Job
        {
            [Probe] public TaskAwaiter<int> GetAwaiter() => Task.FromResult(42).GetAwaiter();
        }
        [CollectionBuilder(typeof(ListBuilder), "Create")]
        class Built : IEnumerable<int>
        {
            public IEnumerator<int> GetEnumerator() => null!;
            IEnumerator IEnumerable.GetEnumerator() => null!;
        }
        static class ListBuilder
        {
            [Probe] public static Built Create(System.ReadOnlySpan<int> items) => new();
        }
        class Caller
        {
            async Task M()
            {
                var bag = new Bag { {|PG1008:1|}, {|PG1008:2|} };
                bag.Add(3);
                {|PG1008:foreach (int i in bag) { }|}
                {|PG1008:var (x, y) = new Point()|};
                int r = {|PG1008:await new Job()|};
                Built b = {|PG1008:[1, 2]|};
            }
        }
        """);

    [Fact]
    public Task PG1008_PopularMembersOfUnrelatedTypesAreNotReported() => V.Analyze("""
        using System.Collections.Generic;
        sealed class Handle : System.IDisposable { [Probe] public void Dispose() { } }
        class Money { [Probe] public override string ToString() => "12.50 EUR"; }
        // Only the override is probed: its base call reaches no probe.
        class Sync { public virtual string Execute() => "sync"; }
        class SyncFrom : Sync { [Probe] public override string Execute() => "from:" + base.Execute(); }
        class Caller
        {
            // Generic code calling object's members on an unconstrained T is the framework's kind of call.
            static string Show<T>(T value) => value?.ToString() ?? "";

            void M(List<int> list, System.IO.Stream stream)
            {
                using (IEnumerator<int> e = list.GetEnumerator()) { e.MoveNext(); }
                using var s = stream;
                foreach (int x in list) { }
                var (a, b) = (1, 2);
                Func<string> f = list.ToString;
                stream.Dispose();
            }
        }
        """);
}
