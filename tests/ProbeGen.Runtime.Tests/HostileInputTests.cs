using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics.Tracing;
using System.Linq;
using System.Threading;
using CsCheck;
using ProbeGen.Control;
using Xunit;

namespace ProbeGen.Tests;

/// <summary>
/// What a remote caller sends, at its worst: filters over values whose code fights back,
/// duplicated and oversized patterns, and random provider arguments. Driven in-process, with an
/// EventListener standing in for the CLI's EventPipe session.
/// </summary>
public class HostileInputTests
{
    /// <summary>A value whose ToString fires the probe it is an argument of, and counts its calls.</summary>
    private sealed class SelfFiring(StaticProbeSite<ProbeArgs<object>> site)
    {
        public int ToStringCalls;

        public override string ToString()
        {
            Interlocked.Increment(ref ToStringCalls);
            site.Fire(new ProbeArgs<object>(this));
            return "self-firing";
        }

        public override bool Equals(object? obj) => throw new InvalidOperationException("the filter called Equals");

        public override int GetHashCode() => throw new InvalidOperationException("the filter called GetHashCode");
    }

    private sealed class Throwing
    {
        public override string ToString() => throw new FormatException("no text for you");
    }

    private static string NewSession(string prefix) => prefix + Guid.NewGuid().ToString("N")[..12];

    private static void Enable(string session, string command, params (string Key, string Value)[] arguments)
    {
        var all = new Dictionary<string, string?> { [ControlProtocol.Keys.Session] = session, [ControlProtocol.Keys.Command] = command };
        foreach (var (key, value) in arguments)
            all[key] = value;
        ControlPlane.OnEnable(all);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("value != \"x\"")]
    [InlineData("value == \"self-firing\"")]
    [InlineData("value != null")]
    public void AValueWhoseToStringFiresItsOwnProbeNeitherRecursesNorIsCalledByTheFilter(string? where)
    {
        string provider = TestSites.UniqueProvider("selfire");
        var site = TestSites.Static<ProbeArgs<object>>(provider, "value", new ProbeParameter("value", "Widget"));
        string session = NewSession("h");
        using var listener = new SessionListener(session);
        var arguments = new List<(string, string)> { (ControlProtocol.Keys.Patterns, ControlProtocol.Encode(provider + ":*")) };
        if (where is not null)
            arguments.Add((ControlProtocol.Keys.Where, ControlProtocol.Encode(where)));
        Enable(session, "trace", [.. arguments]);
        Assert.Empty(listener.Of(ControlProtocol.ErrorEvent));
        Assert.True(site.IsEnabled, "the session did not attach");

        var value = new SelfFiring(site);
        site.Fire(new ProbeArgs<object>(value));  // would overflow the stack without the guard

        var hits = listener.Hits();
        // An opaque value equals no string: == "self-firing" drops it, the others keep it.
        int expected = where == "value == \"self-firing\"" ? 0 : 1;
        Assert.Equal(expected, hits.Count);
        // Only serialising a hit that passed calls the app's ToString, once; the filter never does.
        Assert.Equal(expected, value.ToStringCalls);
        if (expected == 1)
            Assert.Contains("self-firing", HitView.Of(listener, hits[0]).Args);
        listener.EndAll();
    }

    [Fact]
    public void AToStringThatThrowsCostsTheValueNotTheHit()
    {
        string provider = TestSites.UniqueProvider("throwing");
        var site = TestSites.Static<ProbeArgs<object, int>>(provider, "value", new ProbeParameter("value", "object"), new ProbeParameter("n", "int"));
        string session = NewSession("h");
        using var listener = new SessionListener(session);
        Enable(session, "trace", (ControlProtocol.Keys.Patterns, ControlProtocol.Encode(provider + ":*")));

        site.Fire(new ProbeArgs<object, int>(new Throwing(), 7));

        string args = HitView.Of(listener, Assert.Single(listener.Hits())).Args;
        Assert.Equal("{\"value\":\"(Throwing.ToString() threw FormatException)\",\"n\":7}", args);
        listener.EndAll();
    }

    /// <summary>However many times a session repeats its patterns, and however they overlap, a probe is bound once and each hit delivered once.</summary>
    [Fact]
    public void DuplicatedPatternsCostOneBindingAndOneDeliveryPerProbe()
    {
        string provider = TestSites.UniqueProvider("dup");
        var site = TestSites.Static<ProbeArgs<int>>(provider, "tick", new ProbeParameter("n", "int"));
        Gen.Int[1, 3000].Select(Gen.Int[0, 3]).Sample((copies, shape) =>
        {
            string[] overlapping = [provider + ":*", provider + ":tick", "*:tick", provider + ":t?ck"];
            var lines = Enumerable.Range(0, copies).Select(i => overlapping[(i + shape) % (1 + shape)]);
            string session = NewSession("d");
            using var listener = new SessionListener(session);
            Enable(session, "trace", (ControlProtocol.Keys.Patterns, ControlProtocol.Encode(string.Join('\n', lines))));
            Assert.Empty(listener.Of(ControlProtocol.ErrorEvent));
            Assert.Equal(1, site.ConsumerCount);
            site.Fire(new ProbeArgs<int>(copies));
            Assert.Single(listener.Hits());
            listener.EndAll();
            Assert.True(SpinWait.SpinUntil(() => site.ConsumerCount == 0, TimeSpan.FromSeconds(5)), "the session did not detach");
        }, iter: 40, threads: 1);
    }

    [Fact]
    public void TooManyPatternsOrTooMuchTextIsRefusedWithOneError()
    {
        string session = NewSession("b");
        using var listener = new SessionListener(session);
        int before = ControlPlane.SessionCount;
        string many = string.Join('\n', Enumerable.Range(0, ControlProtocol.MaxPatterns + 1).Select(i => $"p{i}:*"));
        Enable(session, "trace", (ControlProtocol.Keys.Patterns, ControlProtocol.Encode(many)));
        var error = Assert.Single(listener.Of(ControlProtocol.ErrorEvent));
        Assert.Equal(ControlProtocol.Errors.BadPattern, error.Payload![0]);
        Assert.Contains($"more than {ControlProtocol.MaxPatterns} distinct patterns", (string)error.Payload[1]!);

        string huge = NewSession("b");
        using var second = new SessionListener(huge);
        Enable(huge, "trace", (ControlProtocol.Keys.Patterns, new string('A', ControlProtocol.MaxArgumentLength + 1)));
        Assert.Contains("the limit is", (string)Assert.Single(second.Of(ControlProtocol.ErrorEvent)).Payload![1]!);

        string longPattern = NewSession("b");
        using var third = new SessionListener(longPattern);
        Enable(longPattern, "trace", (ControlProtocol.Keys.Patterns, ControlProtocol.Encode("a:" + new string('x', ProbePattern.MaxLength))));
        Assert.Contains("characters long", (string)Assert.Single(third.Of(ControlProtocol.ErrorEvent)).Payload![1]!);
        Assert.Equal(before, ControlPlane.SessionCount);
    }

    /// <summary>Random provider arguments, valid and not, never throw out of the control plane, never leave a session behind, and never attach to anything but what a valid command names.</summary>
    [Fact]
    public void RandomProviderArgumentsNeverHurtTheTarget()
    {
        string provider = TestSites.UniqueProvider("fuzz");
        var site = TestSites.Static<ProbeArgs<string, long>>(provider, "hit", new ProbeParameter("name", "string"), new ProbeParameter("n", "long"));
        string[] keys = [ControlProtocol.Keys.Command, ControlProtocol.Keys.Patterns, ControlProtocol.Keys.Where, ControlProtocol.Keys.Rate, ControlProtocol.Keys.Interval, "junk", ""];
        var text = Gen.OneOf(
            Gen.String,
            Gen.Const("trace"), Gen.Const("stats"), Gen.Const("list"),
            Gen.String.Select(ControlProtocol.Encode),
            Gen.OneOfConst(provider + ":*", "*", "a:b\n*:*", "((((", "name == \"x\" && n > 3", "n > 9223372036854775807", "-1", "0", "999999999999")
                .Select(ControlProtocol.Encode),
            Gen.Char.Array[0, 70_000].Select(c => new string(c)));
        var arguments = Gen.Dictionary(Gen.OneOfConst(keys), text.Null())[0, 7];
        int baseline = ControlPlane.SessionCount;
        arguments.Sample(args =>
        {
            string session = NewSession("f");
            using var listener = new SessionListener(session);
            var all = new Dictionary<string, string?>(args) { [ControlProtocol.Keys.Session] = session };
            ControlPlane.OnEnable(all);  // must not throw
            site.Fire(new ProbeArgs<string, long>("x", 4));
            Assert.All(listener.Of(ControlProtocol.ErrorEvent), e => Assert.NotEqual(ControlProtocol.Errors.Internal, e.Payload![0]));
            listener.EndAll();
            Assert.True(SpinWait.SpinUntil(() => ControlPlane.SessionCount == baseline && site.ConsumerCount == 0, TimeSpan.FromSeconds(5)),
                "a session outlived its listener");
        }, iter: 300, threads: 1);
    }

    [Fact]
    public void HitsAreJsonPeopleAndGrepCanRead()
    {
        string provider = TestSites.UniqueProvider("readable");
        var site = TestSites.Static<ProbeArgs<string>>(provider, "value", new ProbeParameter("type", "string"));
        string session = NewSession("j");
        using var listener = new SessionListener(session);
        Enable(session, "trace", (ControlProtocol.Keys.Patterns, ControlProtocol.Encode(provider + ":*")));
        site.Fire(new ProbeArgs<string>("PendNode<T> & 'ü' \"q\""));
        string args = HitView.Of(listener, Assert.Single(listener.Hits())).Args;
        Assert.Equal("{\"type\":\"PendNode<T> & 'ü' \\\"q\\\"\"}", args);
        listener.EndAll();
    }
}
