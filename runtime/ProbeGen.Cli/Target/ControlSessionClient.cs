using System;
using System.Collections.Generic;
using System.Diagnostics.Tracing;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using ProbeGen.Control;

namespace ProbeGen.Cli.Target;

/// <summary>
/// One EventPipe session to a target's ProbeGen control plane: the command goes out as provider
/// arguments of <c>ProbeGen</c>; replies come back on <c>ProbeGen-{session}</c>.
/// </summary>
internal sealed class ControlSessionClient : IDisposable
{
    private readonly EventPipeSession _session;
    private readonly TargetProcess _target;
    private readonly string _id;
    private readonly string _replyProvider;
    private readonly Task _reader;
    private long _eventsLost;
    private int _stopped;

    private readonly System.IO.Stream? _saveTo;

    private ControlSessionClient(EventPipeSession session, TargetProcess target, string id, System.IO.Stream? saveTo, Action<TraceEvent> onEvent)
    {
        _session = session;
        _target = target;
        _id = id;
        _replyProvider = ControlProtocol.SessionProviderName(id);
        _saveTo = saveTo;
        _reader = Task.Factory.StartNew(() => Read(onEvent), TaskCreationOptions.LongRunning);
    }

    /// <summary>Events EventPipe lost (full buffers), as TraceEvent counts them.</summary>
    public long EventsLost => Interlocked.Read(ref _eventsLost);

    private Exception? _brokenBy;

    /// <summary>What ended the stream when it did not end cleanly, else null.</summary>
    public Exception? BrokenBy => Volatile.Read(ref _brokenBy);

    /// <summary>Completes when the event stream ends: the session stopped or the target exited. Never faults.</summary>
    public Task Completion => _reader;

    /// <summary>Opens a session that sends <paramref name="command"/> with <paramref name="arguments"/>.</summary>
    /// <param name="target">The process.</param>
    /// <param name="command">The command the target runs.</param>
    /// <param name="arguments">Its arguments (see <see cref="ControlProtocol.Keys"/>).</param>
    /// <param name="bufferMegabytes">The target's EventPipe buffer for this session: memory it holds for events not yet read; when full, events are dropped and counted.</param>
    /// <param name="saveTo">When not null, every byte of the session's stream is also written here (a <c>.nettrace</c>, with a stack per event for viewers); disposed with the client's reader.</param>
    /// <param name="onEvent">Called for each reply on the reader thread.</param>
    public static ControlSessionClient Start(TargetProcess target, string command, IDictionary<string, string> arguments, int bufferMegabytes, System.IO.Stream? saveTo, Action<TraceEvent> onEvent)
    {
        string id = Guid.NewGuid().ToString("N")[..16];
        var all = new Dictionary<string, string>(arguments) { [ControlProtocol.Keys.Session] = id, [ControlProtocol.Keys.Command] = command };
        var providers = new[]
        {
            new EventPipeProvider(ControlProtocol.ProviderName, EventLevel.Informational, 0, all),
            new EventPipeProvider(ControlProtocol.SessionProviderName(id), EventLevel.Verbose, -1),
        };
        EventPipeSession session;
        try
        {
            // No stack per event unless the session is saved for a viewer: walking the stack is most
            // of what an event costs the target, and the live stream never shows it.
            session = target.Client.StartEventPipeSession(new EventPipeSessionConfiguration(providers, bufferMegabytes, requestRundown: false, requestStackwalk: saveTo is not null));
        }
        catch (ServerNotAvailableException)
        {
            throw CliException.Failure($"process {target.Pid} has exited or its diagnostics port is gone");
        }
        catch (UnauthorizedAccessException)
        {
            throw CliException.Failure(TargetProcess.PermissionDenied(target.Pid));
        }
        catch (DiagnosticsClientException ex)
        {
            throw CliException.Failure($"could not open an EventPipe session to process {target.Pid}: {ex.Message}");
        }
        return new ControlSessionClient(session, target, id, saveTo, onEvent);
    }

    /// <summary>
    /// Asks the target to write out every hit this session's threads hold in their batches, and to
    /// answer with a Flushed event on this session's stream. The request is a second, momentary
    /// EventPipe session that names this one: the only way into a target is a session's provider
    /// arguments. False when the request could not be sent (the target is gone).
    /// </summary>
    public bool RequestFlush()
    {
        var arguments = new Dictionary<string, string> { [ControlProtocol.Keys.Session] = _id, [ControlProtocol.Keys.Command] = "flush" };
        var providers = new[] { new EventPipeProvider(ControlProtocol.ProviderName, EventLevel.Informational, 0, arguments) };
        try
        {
            using EventPipeSession flush = _target.Client.StartEventPipeSession(new EventPipeSessionConfiguration(providers, circularBufferSizeMB: 1, requestRundown: false, requestStackwalk: false));
            flush.Stop();
            return true;
        }
        catch (Exception ex) when (ex is ServerNotAvailableException or DiagnosticsClientException or UnauthorizedAccessException or System.IO.IOException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Ends the session: the target detaches everything it enabled. Idempotent.</summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
            return;
        try
        {
            _session.Stop();
        }
        catch (Exception ex) when (ex is ServerNotAvailableException or DiagnosticsClientException or ObjectDisposedException or System.IO.IOException)
        {
            // The target is gone: nothing is left to detach.
        }
    }

    /// <summary>Waits for the stream to drain after <see cref="Stop"/>.</summary>
    public bool WaitForEnd(TimeSpan timeout) => _reader.Wait(timeout);

    public void Dispose()
    {
        Stop();
        _session.Dispose();
    }

    private void Read(Action<TraceEvent> onEvent)
    {
        try
        {
            using var source = new EventPipeEventSource(_saveTo is null ? _session.EventStream : new TeeStream(_session.EventStream, _saveTo));
            // Raw events, filtered by the reply provider's id and decoded by ReplyFields: TraceEvent's
            // dynamic parser, which reads each event by its metadata, cost more per hit than
            // decoding and printing it.
            Guid reply = Microsoft.Diagnostics.Tracing.Session.TraceEventProviders.GetEventSourceGuidFromName(_replyProvider);
            source.AllEvents += e =>
            {
                if (e.ProviderGuid == reply)
                    onEvent(e);
            };
            source.Process();
            Interlocked.Exchange(ref _eventsLost, source.EventsLost);
        }
        catch (Exception ex)
        {
            // The target exited or was killed, or the session was stopped: the stream ends,
            // possibly in the middle of a block (TraceEvent then throws a FormatException or an
            // EndOfStreamException). Whatever arrived before stays delivered; the command says why it ended.
            Volatile.Write(ref _brokenBy, ex);
        }
        finally
        {
            _saveTo?.Dispose();
        }
    }
}
