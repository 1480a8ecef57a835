using System;
using System.Diagnostics.Tracing;

namespace ProbeGen.Control;

/// <summary>
/// The <c>ProbeGen</c> EventSource: the control channel. A <c>probegen</c> session enables it with
/// its command in the provider arguments (see <see cref="ControlProtocol"/>); it writes no events
/// itself. Each session's replies and hits go to that session's own <see cref="SessionEventSource"/>.
/// </summary>
[EventSource(Name = ControlProtocol.ProviderName)]
internal sealed class ControlEventSource : EventSource
{
    public static readonly ControlEventSource Log = new();

    private ControlEventSource()
        : base(EventSourceSettings.EtwSelfDescribingEventFormat)
    {
    }

    /// <summary>Creates the control source if it does not exist yet, so sessions can reach the process.</summary>
    public static void EnsureCreated() => _ = Log;

    protected override void OnEventCommand(EventCommandEventArgs command)
    {
        // Every session that enables the provider sends its arguments with an Enable. A Disable
        // does not say which session left, so liveness comes from each session's own source.
        if (command.Command == EventCommand.Enable && command.Arguments is { Count: > 0 } arguments)
            ControlPlane.OnEnable(arguments);
    }
}

/// <summary>
/// One session's reply channel, the provider <c>ProbeGen-{session}</c>. Only that session enables
/// it, so only that session receives its events, and its Disable says exactly that the session ended.
/// </summary>
internal sealed class SessionEventSource : EventSource
{
    private readonly ControlSession _session;

    public SessionEventSource(string sessionId, ControlSession session)
        : base(ControlProtocol.SessionProviderName(sessionId), EventSourceSettings.EtwManifestEventFormat)
    {
        _session = session;
    }

    protected override void OnEventCommand(EventCommandEventArgs command)
    {
        if (command.Command == EventCommand.Disable && !IsEnabled())
            _session?.End("the session ended");
    }

    [Event(ControlProtocol.ReadyEvent, Level = EventLevel.Informational)]
    public void Ready(string Command, int Probes, string Message) => WriteEvent(ControlProtocol.ReadyEvent, Command, Probes, Message);

    [Event(ControlProtocol.ErrorEvent, Level = EventLevel.Error)]
    public void Error(string Code, string Message) => WriteEvent(ControlProtocol.ErrorEvent, Code, Message);

    [Event(ControlProtocol.ProbeEvent, Level = EventLevel.Informational)]
    public void Probe(string Id, string Kind, string Parameters, string ReturnType, string File, int Line, string Assembly, int Consumers, string CallSites) =>
        WriteEvent(ControlProtocol.ProbeEvent, Id, Kind, Parameters, ReturnType, File, Line, Assembly, Consumers, CallSites);

    [Event(ControlProtocol.ListEndEvent, Level = EventLevel.Informational)]
    public void ListEnd(int Count) => WriteEvent(ControlProtocol.ListEndEvent, Count);

    /// <summary>Announces a probe's index in this session, before its first hit (see <see cref="HitLayout"/>).</summary>
    [Event(ControlProtocol.BindEvent, Level = EventLevel.Informational)]
    public void Bind(int Index, string Probe, string Kind, string Parameters) => WriteEvent(ControlProtocol.BindEvent, Index, Probe, Kind, Parameters);

    /// <summary>
    /// One probe hit, in the layout of <see cref="HitLayout"/>. Only declared here, so that the event's
    /// metadata names its fields: the forwarder writes hits through <see cref="WriteHit"/>, from its own
    /// buffer, with no array to allocate.
    /// </summary>
    [Event(ControlProtocol.HitEvent, Level = EventLevel.Informational)]
    public void Hit(int Probe, byte Point, int ThreadId, long Timestamp, long ElapsedNs, byte[] Data) =>
        WriteHit(Probe, Point, ThreadId, Timestamp, ElapsedNs, Data);

    /// <summary>Writes a <see cref="Hit"/> event with WriteEventCore: the params-object overloads would box every field.</summary>
    [NonEvent]
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Every field is an integer or a byte array: nothing for the trimmer to remove.")]
    public unsafe void WriteHit(int probe, byte point, int threadId, long timestamp, long elapsedNs, ReadOnlySpan<byte> data)
    {
        int length = data.Length;
        fixed (byte* bytes = data)
        {
            EventData* fields = stackalloc EventData[7];
            fields[0] = new EventData { DataPointer = (nint)(&probe), Size = sizeof(int) };
            fields[1] = new EventData { DataPointer = (nint)(&point), Size = sizeof(byte) };
            fields[2] = new EventData { DataPointer = (nint)(&threadId), Size = sizeof(int) };
            fields[3] = new EventData { DataPointer = (nint)(&timestamp), Size = sizeof(long) };
            fields[4] = new EventData { DataPointer = (nint)(&elapsedNs), Size = sizeof(long) };
            // A byte[] field is its int32 length, then its bytes: two descriptors, as EventSource counts it.
            fields[5] = new EventData { DataPointer = (nint)(&length), Size = sizeof(int) };
            fields[6] = new EventData { DataPointer = (nint)bytes, Size = length };
            WriteEventCore(ControlProtocol.HitEvent, 7, fields);
        }
    }

    /// <summary>
    /// Many hits of one thread at once, in the layout of <see cref="HitLayout"/>. Only declared here,
    /// so that the event's metadata names its fields: batches are written through <see cref="WriteBatch"/>.
    /// </summary>
    [Event(ControlProtocol.HitBatchEvent, Level = EventLevel.Informational)]
    public void HitBatch(int Batch, long First, int Count, byte[] Records) =>
        WriteBatch(Batch, First, Count, Records);

    /// <summary>Writes a <see cref="HitBatch"/> event from the batch's own buffer, with no array to allocate.</summary>
    [NonEvent]
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Every field is an integer or a byte array: nothing for the trimmer to remove.")]
    public unsafe void WriteBatch(int batch, long first, int count, ReadOnlySpan<byte> records)
    {
        int length = records.Length;
        fixed (byte* bytes = records)
        {
            EventData* fields = stackalloc EventData[5];
            fields[0] = new EventData { DataPointer = (nint)(&batch), Size = sizeof(int) };
            fields[1] = new EventData { DataPointer = (nint)(&first), Size = sizeof(long) };
            fields[2] = new EventData { DataPointer = (nint)(&count), Size = sizeof(int) };
            fields[3] = new EventData { DataPointer = (nint)(&length), Size = sizeof(int) };
            fields[4] = new EventData { DataPointer = (nint)bytes, Size = length };
            WriteEventCore(ControlProtocol.HitBatchEvent, 5, fields);
        }
    }

    /// <summary>Answers a <c>flush</c>: every hit of the session that happened before it was written before this event.</summary>
    [Event(ControlProtocol.FlushedEvent, Level = EventLevel.Informational)]
    public void Flushed() => WriteEvent(ControlProtocol.FlushedEvent);

    [Event(ControlProtocol.DroppedEvent, Level = EventLevel.Informational)]
    public void Dropped(long Count) => WriteEvent(ControlProtocol.DroppedEvent, Count);

    [Event(ControlProtocol.HeartbeatEvent, Level = EventLevel.Informational)]
    public void Heartbeat() => WriteEvent(ControlProtocol.HeartbeatEvent);

    [Event(ControlProtocol.StatsEvent, Level = EventLevel.Informational)]
    public void Stats(string Json) => WriteEvent(ControlProtocol.StatsEvent, Json);
}
