using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Diagnostics.Tracing;
using ProbeGen.Control;

namespace ProbeGen.Cli.Target;

/// <summary>One reply from the target: its event id and its payload, copied out of TraceEvent's reused objects.</summary>
internal sealed class TargetEvent
{
    private readonly Dictionary<string, object?> _payload;

    private TargetEvent(int id, Dictionary<string, object?> payload)
    {
        Id = id;
        _payload = payload;
    }

    public int Id { get; }

    /// <summary>Copies a reply out of TraceEvent's reused object; a payload that does not decode reads as empty fields.</summary>
    public static unsafe TargetEvent From(TraceEvent e)
    {
        var raw = new ReadOnlySpan<byte>((void*)e.DataStart, e.EventDataLength);
        return new TargetEvent((int)e.ID, ReplyReader.Decode((int)e.ID, raw) ?? new Dictionary<string, object?>(StringComparer.Ordinal));
    }

    public object? this[string name] => _payload.GetValueOrDefault(name);

    public string Text(string name) => _payload.GetValueOrDefault(name) as string ?? "";

    public long Number(string name) => Convert.ToInt64(_payload.GetValueOrDefault(name) ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>
/// Runs one command against a target: opens the session, waits for the target's first reply,
/// hands every later event to the command, and stops on the first of: the command's own stop,
/// the duration, Ctrl-C or SIGTERM, or the target's exit.
/// </summary>
internal sealed class SessionRun : IDisposable
{
    /// <summary>How long a target has to answer before it counts as having no ProbeGen.</summary>
    public static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How often an idle run calls its idle action.</summary>
    private const int IdleCheckMilliseconds = 250;

    private readonly TargetProcess _target;
    private readonly BlockingCollection<TargetEvent> _events = new(boundedCapacity: 100_000);
    private readonly CancellationTokenSource _stop;
    private ControlSessionClient? _client;

    public SessionRun(TargetProcess target, CancellationToken cancel)
    {
        _target = target;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
    }

    public TargetProcess Target => _target;

    /// <summary>The target's EventPipe buffer for this session, in megabytes.</summary>
    public int BufferMegabytes { get; init; } = CommonOptions.DefaultBufferMegabytes;

    /// <summary>Where to save the session's raw stream as a <c>.nettrace</c>, or null.</summary>
    public System.IO.Stream? SaveTo { get; init; }

    public CancellationToken Stopping => _stop.Token;

    public long EventsLost => _client?.EventsLost ?? 0;

    /// <summary>Set once the target replied; a stop asked for before that waits for it (see <see cref="RequestStop"/>).</summary>
    private bool _replied, _stopOnReply;
    private readonly System.Threading.Lock _replyGate = new();

    /// <summary>
    /// Asks the run to stop (duration over, max events reached, stdout closed). Safe on any thread.
    /// Hits can arrive on the reader thread before the reply does; a stop they cause takes effect
    /// once the reply is in, so that it is never mistaken for a target that did not answer.
    /// </summary>
    public void RequestStop()
    {
        lock (_replyGate)
        {
            if (!_replied)
            {
                _stopOnReply = true;
                return;
            }
        }
        _stop.Cancel();
    }

    /// <summary>Opens the session and waits for the first reply; throws a <see cref="CliException"/> for an Error reply or silence.</summary>
    /// <param name="command">The command the target runs.</param>
    /// <param name="arguments">Its arguments.</param>
    /// <param name="duration">How long the run lasts, or null for no limit.</param>
    /// <param name="direct">
    /// Sees every event first, on the reader thread, while TraceEvent's object is valid; the events it
    /// returns true for are consumed there and never queued. The hot path of a stream.
    /// </param>
    public TargetEvent Start(string command, IDictionary<string, string> arguments, TimeSpan? duration, Func<TraceEvent, bool>? direct = null)
    {
        _client = ControlSessionClient.Start(_target, command, arguments, BufferMegabytes, SaveTo, e =>
        {
            if ((int)e.ID == ControlProtocol.FlushedEvent)
            {
                _flushed.Set();
                return;
            }
            if (direct is not null && direct(e))
                return;
            // TraceEvent reuses its event objects: keep the payload, not the event.
            if ((int)e.ID == ControlProtocol.HeartbeatEvent)
                return;
            if (!_events.TryAdd(TargetEvent.From(e)))
                Interlocked.Increment(ref _overflow);
        });
        _client.Completion.ContinueWith(_ => _events.CompleteAdding(), TaskScheduler.Default);
        _target.Resume();
        if (duration is { } d)
            _stop.CancelAfter(d);

        // The reply is the first Ready, Error, Probe or ListEnd. An event stamped before the Ready
        // (the target attaches before it replies) may arrive first: keep it for Next().
        TargetEvent? first = null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            while (first is null && clock.Elapsed < ReplyTimeout)
            {
                if (!_events.TryTake(out TargetEvent? e, (int)Math.Max(1, (ReplyTimeout - clock.Elapsed).TotalMilliseconds), _stop.Token))
                    break;
                if (e.Id is ControlProtocol.ReadyEvent or ControlProtocol.ErrorEvent or ControlProtocol.ProbeEvent or ControlProtocol.ListEndEvent)
                    first = e;
                else
                    _early.Enqueue(e);
            }
        }
        catch (OperationCanceledException)
        {
            throw CliException.Failure($"stopped before process {_target.Pid} answered");
        }
        lock (_replyGate)
        {
            _replied = true;
            if (_stopOnReply)
                _stop.Cancel();
        }
        if (first is null)
        {
            if (_target.Child is { HasExited: true } child)
                throw CliException.Failure($"process {_target.Pid} exited with {child.ExitCode} before ProbeGen answered");
            throw CliException.Failure($"process {_target.Pid} did not answer: ProbeGen is not loaded in it (no [Probe] code has run), or it is not a ProbeGen app");
        }
        if (first.Id == ControlProtocol.ErrorEvent)
        {
            string code = first.Text("Code");
            string message = first.Text("Message");
            throw code switch
            {
                ControlProtocol.Errors.Refused => CliException.Failure($"process {_target.Pid} refused: {message}"),
                ControlProtocol.Errors.BadPattern or ControlProtocol.Errors.BadWhere => CliException.Usage(message),
                _ => CliException.Failure($"process {_target.Pid}: {message}"),
            };
        }
        return first;
    }

    private long _overflow;

    /// <summary>Events that arrived before the reply; Next() hands them out first.</summary>
    private readonly Queue<TargetEvent> _early = new();

    /// <summary>Events the CLI could not queue fast enough (counted as dropped).</summary>
    public long Overflow => Interlocked.Read(ref _overflow);

    /// <summary>The next event, or null when the run is stopping or the stream ended.</summary>
    /// <param name="idle">Called once before waiting when no event is ready: the moment to flush buffered output.</param>
    public TargetEvent? Next(Action? idle = null)
    {
        if (_early.TryDequeue(out TargetEvent? early))
            return early;
        try
        {
            if (_events.TryTake(out TargetEvent? ready))
                return ready;
            // Wake up now and then while idle: the idle action also notices a closed stdout.
            while (true)
            {
                idle?.Invoke();
                if (_events.TryTake(out TargetEvent? e, IdleCheckMilliseconds, _stop.Token))
                    return e;
                if (_events.IsCompleted)
                    return null;
            }
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        catch (InvalidOperationException)
        {
            return null;  // completed
        }
    }

    /// <summary>
    /// Why the run ended, to say after the summary: no line when the user, the duration or the
    /// command stopped it, or a launched command exited normally; one line otherwise. The exit
    /// code is <see cref="ExitCode.Ok"/> for every end the user asked for or expects (a closed
    /// stdout, a launched command's own exit), <see cref="ExitCode.Failure"/> when an attached
    /// process died or the session broke under it.
    /// </summary>
    /// <param name="outputClosed">True when stdout's reader went away.</param>
    public (string? Line, ExitCode Code) Outcome(bool outputClosed)
    {
        if (outputClosed)
            return ("stdout was closed; stopped", ExitCode.Ok);
        if (_stop.IsCancellationRequested)
            return (null, ExitCode.Ok);
        if (_target.Child is { } child)
        {
            child.WaitForExit(2000);
            if (child.HasExited)
                return child.ExitCode == 0 ? (null, ExitCode.Ok) : ($"process {_target.Pid} exited with code {child.ExitCode}", ExitCode.Ok);
        }
        if (!IsRunning(_target.Pid))
            return ($"process {_target.Pid} exited during the session", ExitCode.Failure);
        string why = _client?.BrokenBy is { } broken ? $": {broken.Message}" : "";
        return ($"the session with process {_target.Pid} ended unexpectedly{why}", ExitCode.Failure);
    }

    /// <summary>True while the process exists and is not a zombie.</summary>
    private static bool IsRunning(int pid)
    {
        try
        {
            string stat = System.IO.File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] is not ('Z' or 'X');
        }
        catch (Exception ex) when (ex is System.IO.IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>How long a stop waits for the target to write out its batched hits.</summary>
    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(2);

    private readonly ManualResetEventSlim _flushed = new();

    /// <summary>Stops the session and drains what the target had already sent.</summary>
    /// <param name="flush">
    /// True to have the target write out the hits its threads still hold in their batches first (see
    /// <see cref="ControlSessionClient.RequestFlush"/>), so that every hit before the stop is delivered.
    /// </param>
    public IEnumerable<TargetEvent> StopAndDrain(bool flush = false)
    {
        if (flush && _client is { Completion.IsCompleted: false } client && client.RequestFlush())
            WaitHandle.WaitAny([_flushed.WaitHandle, ((IAsyncResult)client.Completion).AsyncWaitHandle], FlushTimeout);
        _client?.Stop();
        _client?.WaitForEnd(TimeSpan.FromSeconds(5));
        while (_events.TryTake(out TargetEvent? e))
            yield return e;
    }

    public void Dispose()
    {
        _client?.Dispose();
        _stop.Dispose();
        _flushed.Dispose();
    }
}
