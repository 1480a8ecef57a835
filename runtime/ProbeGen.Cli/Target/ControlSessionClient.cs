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
    private readonly string _replyProvider;
    private readonly Task _reader;
    private long _eventsLost;
    private int _stopped;

    private ControlSessionClient(EventPipeSession session, string replyProvider, Action<TraceEvent> onEvent)
    {
        _session = session;
        _replyProvider = replyProvider;
        _reader = Task.Factory.StartNew(() => Read(onEvent), TaskCreationOptions.LongRunning);
    }

    /// <summary>Events EventPipe lost (full buffers), as TraceEvent counts them.</summary>
    public long EventsLost => Interlocked.Read(ref _eventsLost);

    /// <summary>Completes when the event stream ends: the session stopped or the target exited.</summary>
    public Task Completion => _reader;

    /// <summary>Opens a session that sends <paramref name="command"/> with <paramref name="arguments"/>.</summary>
    public static ControlSessionClient Start(TargetProcess target, string command, IDictionary<string, string> arguments, Action<TraceEvent> onEvent)
    {
        string id = Guid.NewGuid().ToString("N")[..16];
        var all = new Dictionary<string, string>(arguments) { ["session"] = id, ["command"] = command };
        var providers = new[]
        {
            new EventPipeProvider(ControlProtocol.ProviderName, EventLevel.Informational, 0, all),
            new EventPipeProvider(ControlProtocol.SessionProviderName(id), EventLevel.Verbose, -1),
        };
        EventPipeSession session;
        try
        {
            session = target.Client.StartEventPipeSession(providers, requestRundown: false, circularBufferMB: 256);
        }
        catch (ServerNotAvailableException)
        {
            throw CliException.Failure($"process {target.Pid} has exited or its diagnostics port is gone");
        }
        catch (DiagnosticsClientException ex)
        {
            throw CliException.Failure($"could not open an EventPipe session to process {target.Pid}: {ex.Message}");
        }
        return new ControlSessionClient(session, ControlProtocol.SessionProviderName(id), onEvent);
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
            using var source = new EventPipeEventSource(_session.EventStream);
            source.Dynamic.All += e =>
            {
                if (string.Equals(e.ProviderName, _replyProvider, StringComparison.Ordinal))
                    onEvent(e);
            };
            source.Process();
            Interlocked.Exchange(ref _eventsLost, source.EventsLost);
        }
        catch (Exception ex) when (ex is System.IO.IOException or ObjectDisposedException)
        {
            // The target exited or the session was stopped: the stream simply ends.
        }
    }
}
