using System;

namespace ProbeGen.Control;

/// <summary>The kind of one field of a session reply event, as EventSource lays it out.</summary>
public enum ReplyFieldKind
{
    /// <summary>UTF-16 text ending in a NUL character.</summary>
    Text,

    /// <summary>A little-endian 32-bit integer.</summary>
    Int32,

    /// <summary>A little-endian 64-bit integer.</summary>
    Int64,
}

/// <summary>One field of a session reply event.</summary>
/// <param name="Name">The parameter name of the event method, which is the payload field's name.</param>
/// <param name="Kind">How it is laid out.</param>
public readonly record struct ReplyField(string Name, ReplyFieldKind Kind);

/// <summary>
/// The fields of each session reply event other than the hit (whose layout is
/// <see cref="HitLayout"/>), in order. <c>probegen</c> decodes the raw payloads with it instead of
/// asking TraceEvent to parse each event by its metadata, which costs more than printing the
/// hit. A test checks it against the event methods of the session's EventSource.
/// </summary>
public static class ReplyFields
{
    private static readonly ReplyField[] Ready = [new("Command", ReplyFieldKind.Text), new("Probes", ReplyFieldKind.Int32), new("Message", ReplyFieldKind.Text)];
    private static readonly ReplyField[] Error = [new("Code", ReplyFieldKind.Text), new("Message", ReplyFieldKind.Text)];
    private static readonly ReplyField[] Probe =
    [
        new("Id", ReplyFieldKind.Text), new("Kind", ReplyFieldKind.Text), new("Parameters", ReplyFieldKind.Text), new("ReturnType", ReplyFieldKind.Text),
        new("File", ReplyFieldKind.Text), new("Line", ReplyFieldKind.Int32), new("Assembly", ReplyFieldKind.Text), new("Consumers", ReplyFieldKind.Int32),
        new("CallSites", ReplyFieldKind.Text),
    ];
    private static readonly ReplyField[] ListEnd = [new("Count", ReplyFieldKind.Int32)];
    private static readonly ReplyField[] Bind = [new("Index", ReplyFieldKind.Int32), new("Probe", ReplyFieldKind.Text), new("Kind", ReplyFieldKind.Text), new("Parameters", ReplyFieldKind.Text)];
    private static readonly ReplyField[] Dropped = [new("Count", ReplyFieldKind.Int64)];
    private static readonly ReplyField[] Stats = [new("Json", ReplyFieldKind.Text)];

    /// <summary>The fields of the reply event <paramref name="eventId"/>; empty for the heartbeat, and for an id this version does not know.</summary>
    public static ReadOnlySpan<ReplyField> Of(int eventId) => eventId switch
    {
        ControlProtocol.ReadyEvent => Ready,
        ControlProtocol.ErrorEvent => Error,
        ControlProtocol.ProbeEvent => Probe,
        ControlProtocol.ListEndEvent => ListEnd,
        ControlProtocol.BindEvent => Bind,
        ControlProtocol.DroppedEvent => Dropped,
        ControlProtocol.StatsEvent => Stats,
        _ => [],
    };
}
