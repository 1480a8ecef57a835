using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics.Tracing;
using System.Linq;
using ProbeGen.Control;
using Xunit;

namespace ProbeGen.Tests;

/// <summary>Secrets never leave the process unasked: by name, by attribute, and whatever the remote caller sends.</summary>
public class RedactionTests
{
    [Theory]
    [InlineData("password", true)]
    [InlineData("newPassword", true)]
    [InlineData("refresh_token", true)]
    [InlineData("clientSecret", true)]
    [InlineData("apiKey", true)]
    [InlineData("api-key", true)]
    [InlineData("Authorization", true)]
    [InlineData("cardNumber", true)]
    [InlineData("card_number", true)]
    [InlineData("cvv", true)]
    [InlineData("pin", true)]
    [InlineData("spinner", false)]
    [InlineData("customer", false)]
    [InlineData("amount", false)]
    [InlineData("tokenizer", true)]
    public void SensitiveNamesAreRedactedByDefault(string name, bool redacted) =>
        Assert.Equal(redacted, ProbeRedaction.IsSensitiveName(name));

    [Fact]
    public void AnAttributeWinsOverTheName()
    {
        Assert.True(ProbeRedaction.IsRedacted(new ProbeParameter("customer", "string") { Redact = ProbeRedact.Always }));
        Assert.False(ProbeRedaction.IsRedacted(new ProbeParameter("password", "string") { Redact = ProbeRedact.Never }));
    }

    [Fact]
    public void TheOwnerExtendsAndRelaxesTheListAndCachedAnswersFollow()
    {
        string extra = "zq" + Guid.NewGuid().ToString("N")[..8];
        var descriptor = new ProbeDescriptor("owner", "p", ProbeKind.Static, [new ProbeParameter(extra + "Field", "string"), new ProbeParameter("sessionIdAllowed" + extra, "string")]);
        Assert.False(descriptor.IsArgumentRedacted(0));
        Assert.True(descriptor.IsArgumentRedacted(1));
        ProbeRedaction.AddSensitiveName(extra);
        ProbeRedaction.AllowName("sessionIdAllowed" + extra);
        Assert.True(descriptor.IsArgumentRedacted(0));
        Assert.False(descriptor.IsArgumentRedacted(1));
    }

    [Fact]
    public void ARedactedValueNeverReachesATraceAndCannotBeFilteredOn()
    {
        string provider = TestSites.UniqueProvider("secret");
        var site = TestSites.Method<ProbeArgs<string, string, string>, string>(provider, "login", "string",
            new ProbeParameter("user", "string"), new ProbeParameter("password", "string"), new ProbeParameter("note", "string") { Redact = ProbeRedact.Always });
        string session = "r" + Guid.NewGuid().ToString("N")[..12];
        using var listener = new SessionListener(session);
        ControlPlane.OnEnable(new Dictionary<string, string?>
        {
            [ControlProtocol.Keys.Session] = session,
            [ControlProtocol.Keys.Command] = "trace",
            [ControlProtocol.Keys.Patterns] = ControlProtocol.Encode(provider + ":*"),
        });
        var args = new ProbeArgs<string, string, string>("ada", "hunter2", "private note");
        long start = site.Entry(in args);
        site.Throw(in args, new UnauthorizedAccessException("wrong password hunter2 for ada"), start);

        var hits = listener.Hits();
        Assert.Equal(2, hits.Count);
        foreach (var hit in hits)
        {
            string text = HitView.Of(listener, hit).All;
            Assert.DoesNotContain("hunter2", text);
            // Nor in the bytes themselves, in either encoding a string could travel in.
            byte[] data = hit.Data;
            Assert.False(data.AsSpan().IndexOf(System.Text.Encoding.Unicode.GetBytes("hunter2")) >= 0);
            Assert.False(data.AsSpan().IndexOf(System.Text.Encoding.UTF8.GetBytes("hunter2")) >= 0);
            Assert.DoesNotContain("private note", text);
            Assert.Contains("\"user\":\"ada\"", text);
            Assert.Contains("\"password\":\"[redacted]\"", text);
        }
        Assert.Contains("wrong password [redacted] for ada", HitView.Of(listener, hits[1]).Exception);

        // A filter that names the secret is refused outright: it could guess it one comparison at a time.
        Assert.True(WhereFilter.TryParse("password == \"hunter2\"", out WhereFilter? guess, out _));
        Assert.Null(guess!.Bind(site.Descriptor, out string? error));
        Assert.Contains("redacted", error);

        // Nor does the readable form of a hit show it.
        string shown = "";
        using (Probes.Attach(provider + ":*", (in ProbeHit hit) => shown = hit.ToString()))
            site.Entry(in args);
        Assert.Contains("password=[redacted]", shown);
        Assert.DoesNotContain("hunter2", shown);
    }
}
