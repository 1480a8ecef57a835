using System;
using System.Linq;
using CsCheck;
using ProbeGen.Control;
using Xunit;

namespace ProbeGen.Tests;

public class WhereFilterTests
{
    private static readonly ProbeDescriptor Placed = new("orders", "placed", ProbeKind.Static,
        [new("orderId", "int"), new("amount", "decimal"), new("customer", "string"), new("vip", "bool"), new("note", "string?")]);

    private static bool Eval(string expression, int orderId = 7, decimal amount = 19.99m, string customer = "ada", bool vip = false, string? note = null)
    {
        Assert.True(WhereFilter.TryParse(expression, out WhereFilter? filter, out string? error), error);
        HitPredicate predicate = filter!.Bind(Placed, out string? bindError) ?? throw new Xunit.Sdk.XunitException(bindError);
        // Evaluate against a real hit view: a real site, registered, with a pattern consumer.
        var site = new StaticProbeSite<ProbeArgs<int, decimal, string, bool, string?>>(Placed);
        ProbeCatalog.Register(typeof(WhereFilterTests).Assembly, site);
        var consumer = new Capture(predicate);
        using (Probes.Attach(Placed.Id, consumer))
            site.Fire(new ProbeArgs<int, decimal, string, bool, string?>(orderId, amount, customer, vip, note));
        ProbeCatalog.Registry.Remove(site);
        Assert.True(consumer.Hits == 1);
        return consumer.Result;
    }

    private sealed class Capture(HitPredicate predicate) : ProbeConsumer
    {
        public bool Result;
        public int Hits;

        protected internal override void OnHit(in ProbeHit hit)
        {
            Hits++;
            Result = predicate(in hit);
        }
    }

    [Theory]
    [InlineData("amount > 10", true)]
    [InlineData("amount > 20", false)]
    [InlineData("orderId == 7 && customer == \"ada\"", true)]
    [InlineData("orderId != 7 || customer == \"bob\"", false)]
    [InlineData("!(orderId < 5)", true)]
    [InlineData("vip == false", true)]
    [InlineData("!vip", true)]
    [InlineData("note == null", true)]
    [InlineData("customer != null && customer >= \"a\"", true)]
    [InlineData("amount >= 19.99 && amount <= 19.99", true)]
    [InlineData("elapsed == 0", true)]
    [InlineData("ret == null", true)]
    [InlineData("(((orderId == 7)))", true)]
    [InlineData("orderId == -7", false)]
    public void EvaluatesAgainstARealHit(string expression, bool expected) => Assert.Equal(expected, Eval(expression));

    [Theory]
    [InlineData("", "empty")]
    [InlineData("amount >", "ends where a value was expected")]
    [InlineData("amount > > 3", "unexpected")]
    [InlineData("Console.WriteLine(1)", "unexpected")]
    [InlineData("typeof(int) == 1", "unexpected")]
    [InlineData("\"open", "never closed")]
    [InlineData("(amount > 1", "never closed")]
    [InlineData("amount > 1 extra", "unexpected")]
    [InlineData("a == \"\\q\"", "unknown escape")]
    [InlineData("x == 99999999999999999999999999999999999999999999999999999999999999999999999", "too long")]
    public void RejectsBadInputWithAClearMessage(string expression, string message)
    {
        Assert.False(WhereFilter.TryParse(expression, out _, out string? error));
        Assert.Contains(message, error);
    }

    [Theory]
    [InlineData("nosuch == 1", "has no argument 'nosuch'")]
    [InlineData("customer > 3", "type mismatch")]
    [InlineData("vip < true", "orders numbers and strings")]
    [InlineData("amount", "not a condition")]
    [InlineData("orderId && vip", "needs conditions")]
    public void BindingReportsUnknownNamesAndTypeMismatches(string expression, string message)
    {
        Assert.True(WhereFilter.TryParse(expression, out WhereFilter? filter, out _));
        Assert.Null(filter!.Bind(Placed, out string? error));
        Assert.Contains(message, error);
    }

    [Fact]
    public void DeepNestingIsBoundedNotAStackOverflow()
    {
        string deep = new string('(', 10_000) + "orderId == 1" + new string(')', 10_000);
        Assert.False(WhereFilter.TryParse(deep, out _, out string? error));
        Assert.Contains("4096", error);  // too long before it is too deep
        string nested = new string('(', 200) + "orderId == 1" + new string(')', 200);
        Assert.False(WhereFilter.TryParse(nested, out _, out error));
        Assert.Contains("nests deeper", error);
        string nots = new string('!', 1000) + "vip";
        Assert.False(WhereFilter.TryParse(nots, out _, out error));
        Assert.Contains("nests deeper", error);
    }

    [Fact]
    public void HostileInputNeverThrowsAndNeverHangs()
    {
        // Any string: odd Unicode, control characters, operators, quotes, digits. Parsing either
        // succeeds or fails with a message; binding likewise; nothing throws.
        Gen<string> hostile = Gen.OneOf(
            Gen.Char.Array[0, 200].Select(c => new string(c)),
            Gen.OneOfConst("(", ")", "!", "&&", "||", "==", "<", ">=", "\"", "\\", "orderId", "amount", "1", "-", "1e308", "null", " ", "\u202e", "\ud83d\ude00", "\0")
                .Array[0, 60].Select(parts => string.Concat(parts)));
        hostile.Sample(text =>
        {
            if (!WhereFilter.TryParse(text, out WhereFilter? filter, out string? error))
                return error is { Length: > 0 };
            filter!.Bind(Placed, out _);
            return true;
        }, iter: 5000);
    }

    [Fact]
    public void NumbersCompareAsNumbersWhateverTheDeclaredType()
    {
        var probe = new ProbeDescriptor("where", "any", ProbeKind.Static, [new("boxed", "object"), new("big", "ulong"), new("ratio", "double")]);
        var site = new StaticProbeSite<ProbeArgs<object, ulong, double>>(probe);
        ProbeCatalog.Register(typeof(WhereFilterTests).Assembly, site);
        bool Eval(string expression, object boxed, ulong big, double ratio)
        {
            Assert.True(WhereFilter.TryParse(expression, out WhereFilter? filter, out string? error), error);
            var capture = new Capture(filter!.Bind(probe, out string? bindError) ?? throw new Xunit.Sdk.XunitException(bindError));
            using (Probes.Attach(probe.Id, capture))
                site.Fire(new ProbeArgs<object, ulong, double>(boxed, big, ratio));
            return capture.Result;
        }
        Assert.True(Eval("boxed > 5", 7, 0, 0));                        // an int in an object parameter
        Assert.True(Eval("boxed == 7", 7L, 0, 0));
        Assert.True(Eval("big > 0", 0, ulong.MaxValue, 0));             // no wrap to negative
        Assert.False(Eval("ratio < 5", 0, 0, double.NaN));              // NaN orders with nothing
        Assert.True(Eval("ratio != 5", 0, 0, double.NaN));
        ProbeCatalog.Registry.Remove(site);
    }

    [Fact]
    public void LongOperatorChainsAreBounded()
    {
        string chain = string.Join(" || ", Enumerable.Range(0, 200).Select(i => $"orderId == {i}"));
        Assert.False(WhereFilter.TryParse(chain, out _, out string? error));
        Assert.Contains("more than 64 operators", error);
    }

    [Fact]
    public void HugeLiteralsAreBounded()
    {
        Assert.False(WhereFilter.TryParse("customer == \"" + new string('x', 2000) + "\"", out _, out string? error));
        Assert.Contains("longer than", error);
        Assert.True(WhereFilter.TryParse("amount < 1e308", out _, out _));
        Assert.False(WhereFilter.TryParse("amount < 1e309", out _, out error));
        Assert.Contains("not a number", error);
    }
}
