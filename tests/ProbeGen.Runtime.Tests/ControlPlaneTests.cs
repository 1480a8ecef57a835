using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics.Tracing;
using System.Linq;
using System.Threading;
using ProbeGen.Control;
using Xunit;

namespace ProbeGen.Tests;

/// <summary>
/// The control plane driven in-process: an EventListener stands in for the CLI's EventPipe
/// session, enabling a session's reply source and reading its events.
/// </summary>
public class ControlPlaneTests
{
    /// <summary>A value whose ToString fires a probe: formatting it inside a traced hit would recurse forever.</summary>
    private sealed class Recursive(StaticProbeSite<ProbeArgs<object>> site)
    {
        public override string ToString()
        {
            site.Fire(new ProbeArgs<object>(this));
            return "recursive";
        }
    }

    [Fact]
    public void AHitWhoseArgumentFiresTheSameProbeIsDeliveredOnceAndTheNestedOneCountedAsDropped()
    {
        string provider = TestSites.UniqueProvider("nested");
        var site = TestSites.Static<ProbeArgs<object>>(provider, "value", new ProbeParameter("value", "object"));
        string session = "t" + Guid.NewGuid().ToString("N")[..12];
        using var listener = new SessionListener(session);
        ControlPlane.OnEnable(new Dictionary<string, string?>
        {
            ["session"] = session,
            ["command"] = "trace",
            ["patterns"] = ControlProtocol.Encode(provider + ":*"),
        });
        Assert.True(site.IsEnabled, "the session did not attach");

        site.Fire(new ProbeArgs<object>(new Recursive(site)));  // would overflow the stack without the guard

        var hits = listener.Hits();
        Assert.Single(hits);
        Assert.Contains("recursive", HitView.Of(listener, hits[0]).Args);
        SpinWait.SpinUntil(() => listener.Events.Any(e => e.EventId == ControlProtocol.DroppedEvent), TimeSpan.FromSeconds(5));
        Assert.Equal(1L, listener.Events.Where(e => e.EventId == ControlProtocol.DroppedEvent).Sum(e => (long)e.Payload![0]!));

        listener.Dispose();  // the session's source is disabled: the session ends and detaches
        SpinWait.SpinUntil(() => !site.IsEnabled, TimeSpan.FromSeconds(5));
        Assert.False(site.IsEnabled);
    }
}
