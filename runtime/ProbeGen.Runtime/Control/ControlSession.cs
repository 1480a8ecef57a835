using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Text;
using System.Threading;
using K = ProbeGen.Control.ControlProtocol.Keys;
using E = ProbeGen.Control.ControlProtocol.Errors;

namespace ProbeGen.Control;

/// <summary>
/// One <c>probegen</c> session in the target: its lifecycle and its dispatch. It reads the
/// command, checks every value against the protocol's bounds, attaches a
/// <see cref="TraceForwarder"/> or a <see cref="StatsReporter"/>, and detaches everything when the
/// session ends for any reason (the CLI stops, is killed, or the pipe breaks: EventPipe then
/// disables the session's reply source).
/// </summary>
internal sealed class ControlSession
{
    private readonly Dictionary<string, string?> _arguments;
    private readonly List<ProbeAttachment> _attachments = [];
    private readonly Lock _lock = new();
    private SessionEventSource? _source;
    private StatsReporter? _stats;
    private TraceForwarder? _forwarder;
    private readonly Lock _reportLock = new();
    private Timer? _timer;
    private bool _ended;
    private long _dropped, _droppedReported;
    private int _interval = 1000;
    private long _ticks;

    // Wall clock at the session start, to turn Stopwatch timestamps into Unix nanoseconds.
    private readonly long _unixNanosAtStart = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
    private readonly long _stopwatchAtStart = Stopwatch.GetTimestamp();

    public ControlSession(string id, IDictionary<string, string?> arguments)
    {
        Id = id;
        _arguments = new Dictionary<string, string?>(arguments, StringComparer.Ordinal);
    }

    public string Id { get; }

    /// <summary>The reply source while the session lives; null once it ended.</summary>
    internal SessionEventSource? Source => Volatile.Read(ref _source);

    /// <summary>Counts a hit that was not sent (rate limit, recursion); reported on the next heartbeat.</summary>
    internal void CountDropped() => Interlocked.Increment(ref _dropped);

    /// <summary>A hit's Stopwatch timestamp as Unix nanoseconds.</summary>
    internal long UnixNanos(long timestamp) => _unixNanosAtStart + (long)((timestamp - _stopwatchAtStart) * (1_000_000_000.0 / Stopwatch.Frequency));

    /// <summary>Runs the session's command. Never throws: every failure becomes an Error event.</summary>
    public void Start()
    {
        try
        {
            var source = new SessionEventSource(Id, this);
            lock (_lock)
            {
                _source = source;
                if (_ended || !source.IsEnabled())
                {
                    EndUnderLock();
                    return;
                }
            }
            // One timer per session: heartbeats (see ControlProtocol.HeartbeatMilliseconds), drops, stats.
            lock (_lock)
                _timer = new Timer(static s => ((ControlSession)s!).Tick(), this, ControlProtocol.HeartbeatMilliseconds, ControlProtocol.HeartbeatMilliseconds);
            string command = _arguments.GetValueOrDefault(K.Command) ?? "";
            if (ControlPlane.SessionCount > ControlProtocol.MaxSessions)
            {
                Fail(source, E.Busy, $"the process already serves {ControlProtocol.MaxSessions} probegen sessions; stop one and try again");
                return;
            }
            switch (command)
            {
                case "list":
                    List(source);
                    break;
                case "trace":
                case "stats":
                case "metrics":
                    if (ControlPlane.RemoteEnablingRefused)
                        Fail(source, E.Refused, $"the process was started with {ControlProtocol.ControlVariable}=0 and refuses remote enabling");
                    else
                        Enable(source, command);
                    break;
                default:
                    Fail(source, E.BadCommand, $"unknown command '{Clip(command)}'; expected list, trace, stats or metrics");
                    break;
            }
        }
        catch (Exception ex)
        {
            _source?.Error(E.Internal, $"{ex.GetType().Name}: {ex.Message}");
            End("internal error");
        }
    }

    /// <summary>Detaches everything the session enabled. Idempotent; safe on any thread but a probe handler's.</summary>
    public void End(string reason)
    {
        lock (_lock)
            EndUnderLock();
    }

    private void Fail(SessionEventSource source, string code, string message)
    {
        source.Error(code, message);
        End(code);
    }

    private void EndUnderLock()
    {
        if (_ended && _source is null)
            return;
        _ended = true;
        _timer?.Dispose();
        _timer = null;
        foreach (ProbeAttachment attachment in _attachments)
            attachment.DetachDeferred();
        _attachments.Clear();
        _stats = null;
        SessionEventSource? source = _source;
        // Whatever the batches still hold goes out while the source may still carry it; nothing is taken after.
        _forwarder?.Close(source);
        Volatile.Write(ref _source, null);
        ControlPlane.Forget(this);
        // Not inside the source's own command callback, which may be the caller.
        if (source is not null)
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Dispose(), source, preferLocal: false);
    }

    private static void List(SessionEventSource source)
    {
        int count = 0;
        foreach (ProbeSite site in ProbeCatalog.Sites)
        {
            ProbeDescriptor d = site.Descriptor;
            var parameters = new StringBuilder();
            foreach (ProbeParameter p in d.Parameters)
                parameters.Append(parameters.Length == 0 ? "" : ", ").Append(p.Type).Append(' ').Append(p.Name).Append(p.IsRedacted ? " [redacted]" : "");
            source.Probe(d.Id, d.Kind == ProbeKind.Static ? "static" : "method", parameters.ToString(), d.ReturnType ?? "",
                d.File ?? "", d.Line, d.Assembly ?? "", site.ConsumerCount, d.Kind == ProbeKind.Static ? "" : ControlProtocol.EncodeCallSites(d.CallSites));
            count++;
        }
        source.ListEnd(count);
    }

    private void Enable(SessionEventSource source, string command)
    {
        if (!TryReadPatterns(out ProbePattern? pattern, out string? patternError))
        {
            Fail(source, E.BadPattern, patternError!);
            return;
        }
        if (!TryReadWhere(out WhereFilter? where, out string? whereError))
        {
            Fail(source, E.BadWhere, whereError!);
            return;
        }
        long rate = long.TryParse(_arguments.GetValueOrDefault(K.Rate), out long r) && r > 0 ? r : 0;
        _interval = int.TryParse(_arguments.GetValueOrDefault(K.Interval), out int ms) && ms >= 50 ? ms : 1000;

        TraceForwarder? forwarder = null;
        ProbeAttachment bindsEveryMatch;
        lock (_lock)
        {
            if (_ended)
                return;
            if (command == "trace")
            {
                forwarder = new TraceForwarder(this, where, rate, _arguments.GetValueOrDefault(K.Batch) switch
                {
                    "0" => BatchMode.Never,
                    "1" => BatchMode.Always,
                    _ => BatchMode.Adaptive,
                });
                _forwarder = forwarder;
                _attachments.Add(Probes.Attach(pattern!, forwarder));
            }
            else if (command == "metrics")
            {
                // Published for as long as the session lives: dotnet-counters and any other
                // listener of the ProbeGen meter see the instruments meanwhile.
                _attachments.Add(ProbeMetrics.Enable(pattern!, new ProbeMetricsOptions { TagArguments = ReadNames(K.Tags) }));
            }
            else
            {
                _stats = new StatsReporter(pattern!);
                _attachments.AddRange(_stats.Attachments);
            }
            // Each command's first attachment sees fires, entries or returns of every matching probe,
            // so it is bound to all of them: its bindings are the count, without matching again.
            bindsEveryMatch = _attachments[0];
        }

        int bound = bindsEveryMatch.Probes.Count;
        if (forwarder is not null && where is not null && forwarder.BoundProbes > 0 && forwarder.FilterableProbes == 0)
        {
            Fail(source, E.BadWhere, forwarder.FirstBindError ?? "the --where expression fits none of the matching probes");
            return;
        }
        source.Ready(command, bound, bound == 0 ? "no probe matches yet; probes registered later will be traced" : "");
    }

    /// <summary>The session's patterns as one, duplicates removed, within the protocol's bounds.</summary>
    private bool TryReadPatterns(out ProbePattern? pattern, out string? error)
    {
        pattern = null;
        if (!TryDecode(K.Patterns, out string? text, out error))
            return false;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "no probe pattern was given";
            return false;
        }
        var patterns = new List<ProbePattern>();
        var distinct = new HashSet<string>(StringComparer.Ordinal);
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!distinct.Add(line))
                continue;
            if (distinct.Count > ControlProtocol.MaxPatterns)
            {
                error = $"more than {ControlProtocol.MaxPatterns} distinct patterns; use wildcards to cover more probes with fewer patterns";
                return false;
            }
            if (!ProbePattern.TryParse(line, out ProbePattern? parsed, out error))
                return false;
            patterns.Add(parsed!);
        }
        pattern = ProbePattern.AnyOf(patterns);
        return true;
    }

    private bool TryReadWhere(out WhereFilter? where, out string? error)
    {
        where = null;
        error = null;
        if (!_arguments.ContainsKey(K.Where))
            return true;
        if (!TryDecode(K.Where, out string? text, out error))
            return false;
        if (text is null)
        {
            error = "the --where expression did not arrive intact";
            return false;
        }
        return WhereFilter.TryParse(text, out where, out error);
    }

    /// <summary>Decodes a base64url argument, refusing one longer than the protocol allows before reading it.</summary>
    private bool TryDecode(string key, out string? text, out string? error)
    {
        text = null;
        error = null;
        string? encoded = _arguments.GetValueOrDefault(key);
        if (encoded is null)
            return true;
        if (encoded.Length > ControlProtocol.MaxArgumentLength)
        {
            error = $"the {key} argument is {encoded.Length} characters long; the limit is {ControlProtocol.MaxArgumentLength}";
            return false;
        }
        text = ControlProtocol.Decode(encoded);
        if (text is null)
            error = $"the {key} argument did not arrive intact";
        return text is not null;
    }

    /// <summary>A comma-separated list of argument names; anything else in it is ignored, and it is bounded like every argument.</summary>
    private string[] ReadNames(string key)
    {
        string? text = _arguments.GetValueOrDefault(key);
        if (text is null || text.Length > 1024)
            return [];
        return Array.FindAll(text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            name => name.Length <= 128 && Array.TrueForAll(name.ToCharArray(), c => char.IsAsciiLetterOrDigit(c) || c == '_'));
    }

    private static string Clip(string text) => text.Length <= 64 ? text : text[..64] + "...";

    /// <summary>
    /// Writes out every hit the session's threads hold in their batches, and the drops so far;
    /// with <paramref name="answer"/>, then says so with a Flushed event. For a <c>flush</c> from
    /// the CLI before it stops, and for the process's exit. Never throws.
    /// </summary>
    public void Flush(bool answer)
    {
        try
        {
            if (Source is not { } source)
                return;
            _forwarder?.WriteBatches(source, wait: true);
            ReportDropped(source);
            if (answer)
                source.Flushed();
        }
        catch (Exception)
        {
            // Called from the diagnostics server's thread and from the process's exit: it must not throw there.
        }
    }

    /// <summary>Makes the session write every hit as it happens from now on, after what its batches hold.</summary>
    public void StopBatching()
    {
        if (_forwarder is { } forwarder && Source is { } source)
            forwarder.StopBatching(source);
    }

    private void ReportDropped(SessionEventSource source)
    {
        lock (_reportLock)
        {
            long dropped = Interlocked.Read(ref _dropped);
            if (dropped != _droppedReported)
            {
                source.Dropped(dropped - _droppedReported);
                _droppedReported = dropped;
            }
        }
    }

    /// <summary>Every heartbeat: the quiet threads' batches, the heartbeat, drops if any, and for stats the snapshot each interval.</summary>
    private void Tick()
    {
        try
        {
            SessionEventSource? source = Source;
            if (source is null)
                return;
            // A quiet thread's hits wait in its batch for this; a busy thread writes its own.
            if (_forwarder is { } forwarder)
            {
                forwarder.WriteBatches(source, wait: false);
                forwarder.Adapt(source);
            }
            ReportDropped(source);
            long ticks = Interlocked.Increment(ref _ticks);
            if (_stats is { } stats && ticks * ControlProtocol.HeartbeatMilliseconds % _interval < ControlProtocol.HeartbeatMilliseconds)
                source.Stats(stats.Snapshot());
            source.Heartbeat();
        }
        catch (Exception)
        {
            // A timer callback must not take the process down; the next tick tries again.
        }
    }
}
