using System;
using System.Diagnostics.Tracing;
using System.Linq;
using System.Reflection;
using ProbeGen.Control;
using Xunit;

namespace ProbeGen.Runtime.Tests;

/// <summary>
/// The reply layout probegen decodes with must be the one the session's EventSource writes: every
/// event method but the hit and the hit batch, its parameters in order, names and kinds.
/// </summary>
public class ReplyFieldsTests
{
    [Fact]
    public void TheLayoutIsTheSessionEventSourcesOwn()
    {
        var methods = typeof(SessionEventSource).GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
            .Select(m => (Method: m, Event: m.GetCustomAttribute<EventAttribute>()))
            .Where(m => m.Event is not null && m.Event.EventId is not (ControlProtocol.HitEvent or ControlProtocol.HitBatchEvent))
            .ToList();
        Assert.Equal(9, methods.Count);
        foreach (var (method, attribute) in methods)
        {
            var expected = method.GetParameters().Select(p => new ReplyField(p.Name!, p.ParameterType switch
            {
                Type t when t == typeof(string) => ReplyFieldKind.Text,
                Type t when t == typeof(int) => ReplyFieldKind.Int32,
                Type t when t == typeof(long) => ReplyFieldKind.Int64,
                Type t => throw new InvalidOperationException($"{method.Name} has a {t} field the layout cannot describe"),
            }));
            Assert.Equal(expected, ReplyFields.Of(attribute!.EventId).ToArray());
        }
    }

    [Fact]
    public void TheReaderDecodesWhatTheLayoutDescribesAndRefusesWhatDoesNotFit()
    {
        byte[] bind = [.. BitConverter.GetBytes(7), .. System.Text.Encoding.Unicode.GetBytes("app:add\0method\0a\nb\0")];
        var fields = ReplyReader.Decode(ControlProtocol.BindEvent, bind)!;
        Assert.Equal(7, fields["Index"]);
        Assert.Equal("app:add", fields["Probe"]);
        Assert.Equal("a\nb", fields["Parameters"]);
        Assert.Null(ReplyReader.Decode(ControlProtocol.BindEvent, bind.AsSpan(0, bind.Length - 2)));  // the last text never ends
        Assert.Null(ReplyReader.Decode(ControlProtocol.DroppedEvent, new byte[7]));

        // Bytes from another process: any payload either decodes or is refused, never throws.
        var random = new Random(12345);
        for (int i = 0; i < 20_000; i++)
        {
            byte[] payload = new byte[random.Next(0, 64)];
            random.NextBytes(payload);
            ReplyReader.Decode(random.Next(0, 12), payload);
        }
    }
}
