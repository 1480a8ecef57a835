using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Threading;

namespace ProbeGen.Control;

/// <summary>
/// One <c>probegen</c> session in the target: its command, its reply source, and everything it
/// attached. When the session ends for any reason (the CLI stops, is killed, or the pipe breaks),
/// EventPipe disables the session's reply source and everything is detached.
/// </summary>
internal sealed class ControlSession
{
    private readonly Dictionary<string, string?> _arguments;
    private readonly List<ProbeAttachment> _attachments = [];
    private readonly Lock _lock = new();
    private readonly List<ProbeCounter> _counters = [];
    private readonly List<ProbeHistogram> _histograms = [];
    private SessionEventSource? _source;
    private Timer? _timer;
    private bool _ended;
    private long _dropped, _droppedReported;
    private int _interval = 1000;
    private long _ticks;
    private long _lastStats = Stopwatch.GetTimestamp();

    // Wall clock at the session start, to turn Stopwatch timestamps into Unix nanoseconds.
    private readonly long _unixNanosAtStart = (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;
    private readonly long _stopwatchAtStart = Stopwatch.GetTimestamp();

    public ControlSession(string id, IDictionary<string, string?> arguments)
    {
        Id = id;
        _arguments = new Dictionary<string, string?>(arguments, StringComparer.Ordinal);
    }

    public string Id { get; }

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
            string command = _arguments.GetValueOrDefault("command") ?? "";
            switch (command)
            {
                case "list":
                    List(source);
                    break;
                case "trace":
                case "stats":
                    if (ControlPlane.RemoteEnablingRefused)
                        source.Error("refused", $"the process was started with {ControlProtocol.ControlVariable}=0 and refuses remote enabling");
                    else
                        Enable(source, command);
                    break;
                default:
                    source.Error("bad-command", $"unknown command '{command}'; expected list, trace or stats");
                    break;
            }
        }
        catch (Exception ex)
        {
            _source?.Error("internal", $"{ex.GetType().Name}: {ex.Message}");
        }
    }

    /// <summary>Detaches everything the session enabled. Idempotent; safe on any thread but a probe handler's.</summary>
    public void End(string reason)
    {
        lock (_lock)
            EndUnderLock();
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
        SessionEventSource? source = _source;
        _source = null;
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
                parameters.Append(parameters.Length == 0 ? "" : ", ").Append(p.Type).Append(' ').Append(p.Name);
            source.Probe(d.Id, d.Kind == ProbeKind.Static ? "static" : "method", parameters.ToString(), d.ReturnType ?? "",
                d.File ?? "", d.Line, d.Assembly ?? "", site.ConsumerCount, d.Kind == ProbeKind.Static ? "" : ControlProtocol.EncodeCallSites(d.CallSites));
            count++;
        }
        source.ListEnd(count);
    }

    private void Enable(SessionEventSource source, string command)
    {
        string? patternText = ControlProtocol.Decode(_arguments.GetValueOrDefault("patterns"));
        if (string.IsNullOrWhiteSpace(patternText))
        {
            source.Error("bad-pattern", "no probe pattern was given");
            return;
        }
        var patterns = new List<string>();
        foreach (string line in patternText.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!ProbePattern.TryParse(line, out _, out string? patternError))
            {
                source.Error("bad-pattern", patternError!);
                return;
            }
            patterns.Add(line);
        }

        WhereFilter? where = null;
        string? whereText = _arguments.TryGetValue("where", out string? encodedWhere) ? ControlProtocol.Decode(encodedWhere) : null;
        if (encodedWhere is not null && whereText is null)
        {
            source.Error("bad-where", "the --where expression did not arrive intact");
            return;
        }
        if (whereText is not null && !WhereFilter.TryParse(whereText, out where, out string? whereError))
        {
            source.Error("bad-where", whereError!);
            return;
        }
        long rate = long.TryParse(_arguments.GetValueOrDefault("rate"), out long r) && r > 0 ? r : 0;
        _interval = int.TryParse(_arguments.GetValueOrDefault("interval"), out int ms) && ms >= 50 ? ms : 1000;

        var boundIds = new HashSet<ProbeDescriptor>(ReferenceEqualityComparer.Instance);
        var forwarder = command == "trace" ? new HitForwarder(this, where, rate) : null;
        lock (_lock)
        {
            if (_ended)
                return;
            foreach (string pattern in patterns)
            {
                if (forwarder is not null)
                {
                    _attachments.Add(Probes.Attach(pattern, forwarder));
                }
                else
                {
                    ProbeCounter counter = Probes.Count(pattern);
                    ProbeHistogram histogram = Probes.Histogram(pattern);
                    _counters.Add(counter);
                    _histograms.Add(histogram);
                    _attachments.Add(counter.Attachment);
                    _attachments.Add(histogram.Attachment);
                }
                foreach (ProbeSite site in ProbeCatalog.Match(pattern))
                    boundIds.Add(site.Descriptor);
            }
        }

        int bound = boundIds.Count;
        if (forwarder is not null && where is not null && forwarder.BoundProbes > 0 && forwarder.FilterableProbes == 0)
        {
            source.Error("bad-where", forwarder.FirstBindError ?? "the --where expression fits none of the matching probes");
            End("bad where");
            return;
        }
        source.Ready(command, bound, bound == 0 ? "no probe matches yet; probes registered later will be traced" : "");
    }

    /// <summary>Every heartbeat: the heartbeat, rate-limited drops if any, and for stats the snapshot each interval.</summary>
    private void Tick()
    {
        try
        {
            SessionEventSource? source = _source;
            if (source is null)
                return;
            long dropped = Interlocked.Read(ref _dropped);
            if (dropped != _droppedReported)
            {
                source.Dropped(dropped - _droppedReported);
                _droppedReported = dropped;
            }
            long ticks = Interlocked.Increment(ref _ticks);
            if (_counters.Count > 0 && ticks * ControlProtocol.HeartbeatMilliseconds % _interval < ControlProtocol.HeartbeatMilliseconds)
                source.Stats(StatsJson());
            source.Heartbeat();
        }
        catch (Exception)
        {
            // A timer callback must not take the process down; the next tick tries again.
        }
    }

    private string StatsJson()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            // The real time since the previous snapshot: snapshots leave on heartbeat ticks, so
            // the CLI computes rates from this, not from the interval it asked for.
            long now = Stopwatch.GetTimestamp();
            w.WriteNumber("elapsed_ms", Stopwatch.GetElapsedTime(_lastStats, now).TotalMilliseconds);
            _lastStats = now;
            w.WriteStartArray("probes");
            var written = new HashSet<string>(StringComparer.Ordinal);
            lock (_lock)
            {
                var histograms = new Dictionary<string, Log2Histogram>(StringComparer.Ordinal);
                foreach (ProbeHistogram h in _histograms)
                    foreach (var (probe, histogram) in h.ByProbe)
                        histograms[probe.Id] = histogram;
                foreach (ProbeCounter counter in _counters)
                {
                    foreach (var (id, count) in counter.ByProbe)
                    {
                        // Overlapping patterns count a probe in two counters: one row per probe.
                        if (!written.Add(id))
                            continue;
                        w.WriteStartObject();
                        w.WriteString("probe", id);
                        w.WriteNumber("count", count);
                        w.WriteStartArray("latency_ns");
                        if (histograms.TryGetValue(id, out Log2Histogram? histogram))
                        {
                            long[] buckets = histogram.Snapshot();
                            for (int b = 0; b < buckets.Length; b++)
                            {
                                if (buckets[b] == 0)
                                    continue;
                                w.WriteStartArray();
                                w.WriteNumberValue(b);
                                w.WriteNumberValue(buckets[b]);
                                w.WriteEndArray();
                            }
                        }
                        w.WriteEndArray();
                        w.WriteEndObject();
                    }
                }
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Forwards hits that pass the where filter and the rate limit to the session.</summary>
    private sealed class HitForwarder(ControlSession session, WhereFilter? where, long rate) : ProbeConsumer
    {
        public int BoundProbes;
        public int FilterableProbes;
        public string? FirstBindError;

        /// <summary>Probes already bound through an earlier, overlapping pattern of the same session.</summary>
        private readonly HashSet<ProbeDescriptor> _bound = new(ReferenceEqualityComparer.Instance);

        /// <summary>
        /// Set while this thread formats a hit. Formatting runs the app's ToString(); if that hits
        /// a traced probe again, the inner hit is dropped (and counted) instead of recursing.
        /// </summary>
        [ThreadStatic] private static bool t_forwarding;

        protected internal override object? OnAttach(ProbeDescriptor probe)
        {
            // Overlapping patterns ('orders:*' and '*:placed') bind a probe twice: deliver it once.
            if (!_bound.Add(probe))
                return new ProbeState(null, Skip: true);
            BoundProbes++;
            HitPredicate? predicate = null;
            if (where is not null)
            {
                predicate = where.Bind(probe, out string? error);
                if (predicate is null)
                {
                    FirstBindError ??= error;
                    return new ProbeState(null, Skip: true);
                }
            }
            FilterableProbes++;
            return new ProbeState(predicate, Skip: false);
        }

        protected internal override void OnHit(in ProbeHit hit)
        {
            var state = (ProbeState)hit.State!;
            if (state.Skip || (state.Predicate is not null && !state.Predicate(in hit)))
                return;
            if (rate > 0 && !state.TryTake(rate))
            {
                Interlocked.Increment(ref session._dropped);
                return;
            }
            SessionEventSource? source = session._source;
            if (source is null)
                return;
            if (t_forwarding)
            {
                Interlocked.Increment(ref session._dropped);
                return;
            }
            t_forwarding = true;
            try
            {
                Forward(in hit, source);
            }
            finally
            {
                t_forwarding = false;
            }
        }

        private void Forward(in ProbeHit hit, SessionEventSource source)
        {
            long timestamp = session._unixNanosAtStart + (long)((hit.Timestamp - session._stopwatchAtStart) * (1_000_000_000.0 / Stopwatch.Frequency));
            string point = hit.Point switch { ProbePoint.Fire => "fire", ProbePoint.Entry => "entry", _ => "return" };
            string exception = hit.Exception is null ? "" : $"{hit.Exception.GetType().FullName}: {hit.Exception.Message}";
            source.Hit(hit.Probe.Id, point, hit.ThreadId, timestamp, HitJson.Arguments(in hit),
                hit.Point == ProbePoint.Return ? HitJson.Return(in hit) : "", hit.Point == ProbePoint.Return ? hit.ElapsedNanoseconds : 0, exception);
        }
    }

    /// <summary>Per-probe state: the bound filter and a one-second window rate limiter.</summary>
    private sealed class ProbeState(HitPredicate? predicate, bool Skip)
    {
        private long _windowStart = Stopwatch.GetTimestamp();
        private long _taken;

        public HitPredicate? Predicate { get; } = predicate;

        public bool Skip { get; } = Skip;

        public bool TryTake(long perSecond)
        {
            long now = Stopwatch.GetTimestamp();
            long start = Volatile.Read(ref _windowStart);
            if (now - start >= Stopwatch.Frequency && Interlocked.CompareExchange(ref _windowStart, now, start) == start)
                Interlocked.Exchange(ref _taken, 0);
            return Interlocked.Increment(ref _taken) <= perSecond;
        }
    }
}
