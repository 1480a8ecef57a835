using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using CsCheck;
using ProbeGen.Control;
using Xunit;

namespace ProbeGen.Tests;

/// <summary>
/// The binary hit payload: what the target encodes reads back as the JSON the CLI always printed,
/// every probe is named by a Bind before its first hit (late-registered ones too), and the decoder
/// survives any bytes at all.
/// </summary>
public class HitPayloadTests
{
    private enum Color { Red, Green }

    private sealed class Widget
    {
        public override string ToString() => "widget#1";
    }

    private static HitView FireOne<TArgs>(StaticProbeSite<TArgs> site, string provider, TArgs args) where TArgs : struct, IProbeArgs
    {
        string session = "p" + Guid.NewGuid().ToString("N")[..12];
        using var listener = new SessionListener(session);
        ControlPlane.OnEnable(new Dictionary<string, string?>
        {
            [ControlProtocol.Keys.Session] = session,
            [ControlProtocol.Keys.Command] = "trace",
            [ControlProtocol.Keys.Patterns] = ControlProtocol.Encode(provider + ":*"),
        });
        site.Fire(args);
        HitView view = HitView.Of(listener, Assert.Single(listener.Hits()));
        listener.EndAll();
        return view;
    }

    [Fact]
    public void PrimitiveArgumentsReadBackAsTheirJson()
    {
        string provider = TestSites.UniqueProvider("prim");
        var site = TestSites.Static<ProbeArgs<int, decimal, string, double, bool, char, long, string>>(provider, "all",
            new("id", "int"), new("amount", "decimal"), new("name", "string"), new("ratio", "double"), new("ok", "bool"),
            new("grade", "char"), new("big", "long"), new("none", "string"));
        HitView view = FireOne(site, provider, new ProbeArgs<int, decimal, string, double, bool, char, long, string>(
            -7, 12.50m, "ada \"q\" <ü>", 0.1, true, 'x', long.MinValue, null!));
        Assert.Equal("{\"id\":-7,\"amount\":12.50,\"name\":\"ada \\\"q\\\" <ü>\",\"ratio\":0.1,\"ok\":true,\"grade\":\"x\",\"big\":-9223372036854775808,\"none\":null}", view.Args);
    }

    [Fact]
    public void OtherValuesFollowTheJsonRules()
    {
        string provider = TestSites.UniqueProvider("boxed");
        var site = TestSites.Static<ProbeArgs<object, object, object, object, object, object>>(provider, "mixed",
            new("list", "List<int>"), new("color", "Color"), new("widget", "Widget"), new("nan", "double"), new("nested", "object[]"), new("longText", "object"));
        var many = Enumerable.Range(0, 70).ToList();
        HitView view = FireOne(site, provider, new ProbeArgs<object, object, object, object, object, object>(
            many, Color.Green, new Widget(), double.NaN, new object[] { 1, new[] { "a", "b" }, new[] { new[] { 1 } } }, new string('z', 1030)));
        string expectedList = "[" + string.Join(",", Enumerable.Range(0, 64)) + ",\"... 6 more\"]";
        Assert.Equal(
            "{\"list\":" + expectedList + ",\"color\":\"Green\",\"widget\":\"widget#1\",\"nan\":\"NaN\",\"nested\":[1,[\"a\",\"b\"],[\"System.Int32[]\"]],"
            + "\"longText\":\"" + new string('z', 1024) + "...(6 more chars)\"}", view.Args);
    }

    [Fact]
    public void AProbeRegisteredAfterTheSessionStartedIsBoundBeforeItsFirstHit()
    {
        string provider = TestSites.UniqueProvider("late");
        var early = TestSites.Static<ProbeArgs<int>>(provider, "early", new ProbeParameter("n", "int"));
        string session = "l" + Guid.NewGuid().ToString("N")[..12];
        using var listener = new SessionListener(session);
        ControlPlane.OnEnable(new Dictionary<string, string?>
        {
            [ControlProtocol.Keys.Session] = session,
            [ControlProtocol.Keys.Command] = "trace",
            [ControlProtocol.Keys.Patterns] = ControlProtocol.Encode(provider + ":*"),
        });
        var late = TestSites.Static<ProbeArgs<string>>(provider, "late", new ProbeParameter("who", "string"));
        Assert.True(late.IsEnabled, "the session did not bind the late probe");
        late.Fire(new ProbeArgs<string>("ada"));
        early.Fire(new ProbeArgs<int>(3));

        var hits = listener.Hits();
        var events = listener.Events.ToList();
        Assert.Equal(2, hits.Count);
        foreach (var hit in hits)
        {
            int bind = events.FindIndex(e => e.EventId == ControlProtocol.BindEvent && (int)e.Payload![0]! == hit.Header.Probe);
            Assert.InRange(bind, 0, events.IndexOf(hit.Event) - 1);
        }
        Assert.Equal(("late", "{\"who\":\"ada\"}"), (HitView.Of(listener, hits[0]).Probe.Split(':')[1], HitView.Of(listener, hits[0]).Args));
        Assert.Equal("{\"n\":3}", HitView.Of(listener, hits[1]).Args);
        Assert.NotEqual(hits[0].Header.Probe, hits[1].Header.Probe);
        listener.EndAll();
    }

    [Fact]
    public void AHitTooLargeForOneEventIsCountedAsDroppedNotSent()
    {
        string provider = TestSites.UniqueProvider("huge");
        var site = TestSites.Static<ProbeArgs<object, object>>(provider, "big", new("a", "object"), new("b", "object"));
        string session = "h" + Guid.NewGuid().ToString("N")[..12];
        using var listener = new SessionListener(session);
        ControlPlane.OnEnable(new Dictionary<string, string?>
        {
            [ControlProtocol.Keys.Session] = session,
            [ControlProtocol.Keys.Command] = "trace",
            [ControlProtocol.Keys.Patterns] = ControlProtocol.Encode(provider + ":*"),
        });
        // 2 x 64 strings of 1 KB: 256 KB of UTF-16, over the bound.
        var big = Enumerable.Repeat(new string('x', 1024), 64).ToList();
        site.Fire(new ProbeArgs<object, object>(big, big));
        Assert.Empty(listener.Hits());
        Assert.True(System.Threading.SpinWait.SpinUntil(() => listener.Of(ControlProtocol.DroppedEvent).Count > 0, TimeSpan.FromSeconds(5)));
        listener.EndAll();
    }

    /// <summary>Any bytes: the decoder answers true or false and never throws, whatever it is asked to read.</summary>
    [Fact]
    public void RandomBytesNeverThrowOutOfTheDecoder()
    {
        var tags = Gen.Byte[0, 20];
        var bytes = Gen.OneOf(Gen.Byte.Array[0, 200], tags.Array[0, 60], Gen.Byte.Array[0, 40].Select(b => new byte[] { 3 }.Concat(b).ToArray()));
        var writerBuffer = new System.Buffers.ArrayBufferWriter<byte>();
        bytes.Sample(data =>
        {
            writerBuffer.ResetWrittenCount();
            using var w = new Utf8JsonWriter(writerBuffer, new JsonWriterOptions { SkipValidation = true });
            HitPayloadReader.TryReadEvent(data, out _, out _);
            var reader = new HitPayloadReader(data);
            if (reader.TryReadCount(out int count))
            {
                for (int i = 0; i < count && reader.TryWriteValue(w); i++)
                {
                }
                reader.TryReadAbsent(out _);
                reader.TryReadText(out _);
                _ = reader.AtEnd;
            }
        }, iter: 20_000);
    }

    [Fact]
    public void AWholeEventIsSplitOnlyWhenItsLengthsAgree()
    {
        byte[] payload = new byte[HitLayout.DataOffset + 3];
        payload[HitLayout.PointOffset] = (byte)ProbePoint.Return;
        BitConverter.TryWriteBytes(payload.AsSpan(HitLayout.ProbeOffset), 42);
        BitConverter.TryWriteBytes(payload.AsSpan(HitLayout.DataLengthOffset), 3);
        Assert.True(HitPayloadReader.TryReadEvent(payload, out HitHeader header, out ReadOnlySpan<byte> data));
        Assert.Equal((42, ProbePoint.Return, 3), (header.Probe, header.Point, data.Length));

        BitConverter.TryWriteBytes(payload.AsSpan(HitLayout.DataLengthOffset), 4);
        Assert.False(HitPayloadReader.TryReadEvent(payload, out _, out _));
        BitConverter.TryWriteBytes(payload.AsSpan(HitLayout.DataLengthOffset), 3);
        payload[HitLayout.PointOffset] = 3;
        Assert.False(HitPayloadReader.TryReadEvent(payload, out _, out _));
        Assert.False(HitPayloadReader.TryReadEvent(payload.AsSpan(0, HitLayout.DataOffset - 1), out _, out _));
    }
}
