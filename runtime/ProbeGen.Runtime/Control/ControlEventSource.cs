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

    /// <summary>One probe hit. Written with WriteEventCore: the params-object overload would box every field of every hit.</summary>
    [Event(ControlProtocol.HitEvent, Level = EventLevel.Informational)]
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Every field is a string, an int or a long: nothing for the trimmer to remove.")]
    public unsafe void Hit(string Probe, string Point, int ThreadId, long Timestamp, string Args, string Ret, long ElapsedNs, string Exception)
    {
        fixed (char* probe = Probe, point = Point, args = Args, ret = Ret, exception = Exception)
        {
            EventData* data = stackalloc EventData[8];
            data[0] = Text(probe, Probe);
            data[1] = Text(point, Point);
            data[2] = new EventData { DataPointer = (nint)(&ThreadId), Size = sizeof(int) };
            data[3] = new EventData { DataPointer = (nint)(&Timestamp), Size = sizeof(long) };
            data[4] = Text(args, Args);
            data[5] = Text(ret, Ret);
            data[6] = new EventData { DataPointer = (nint)(&ElapsedNs), Size = sizeof(long) };
            data[7] = Text(exception, Exception);
            WriteEventCore(ControlProtocol.HitEvent, 8, data);
        }
    }

    /// <summary>A string field as EventSource lays it out: UTF-16 with its terminating NUL.</summary>
    private static unsafe EventData Text(char* chars, string text) =>
        new() { DataPointer = (nint)chars, Size = (text.Length + 1) * sizeof(char) };

    [Event(ControlProtocol.DroppedEvent, Level = EventLevel.Informational)]
    public void Dropped(long Count) => WriteEvent(ControlProtocol.DroppedEvent, Count);

    [Event(ControlProtocol.HeartbeatEvent, Level = EventLevel.Informational)]
    public void Heartbeat() => WriteEvent(ControlProtocol.HeartbeatEvent);

    [Event(ControlProtocol.StatsEvent, Level = EventLevel.Informational)]
    public void Stats(string Json) => WriteEvent(ControlProtocol.StatsEvent, Json);
}
