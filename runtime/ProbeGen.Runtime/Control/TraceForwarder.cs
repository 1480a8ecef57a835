using System;
using System.Threading;

namespace ProbeGen.Control;

/// <summary>
/// A trace session's consumer: filters each hit, applies the rate limit, encodes what passes
/// (redacted values as <see cref="HitValueTag.Redacted"/>) and writes it to the session in the
/// layout of <see cref="HitLayout"/>. Attached once with all of the session's patterns, so each
/// probe is delivered once; each probe it binds gets the next index and a Bind event that names it.
/// </summary>
/// <remarks>
/// Hits go out through per-thread batches (see <see cref="HitBatch"/>) as <paramref name="mode"/>
/// says. Adaptive, the default, writes each hit as it happens while the session is quiet, and
/// gathers them only once it sees more than <see cref="BatchAbovePerSecond"/>, when one write per
/// hit would cost the app more than the hits are worth and the reader would fall behind.
/// </remarks>
internal sealed class TraceForwarder(ControlSession session, WhereFilter? where, long rate, BatchMode mode) : ProbeConsumer
{
    /// <summary>The hit rate above which an adaptive session gathers hits into batches.</summary>
    public const int BatchAbovePerSecond = 20_000;

    /// <summary>The hit rate below which an adaptive session writes each hit as it happens again.</summary>
    public const int WriteThroughBelowPerSecond = 5_000;

    /// <summary>True when the exit guard watches for this session, which may then batch (see <see cref="ExitGuard"/>).</summary>
    private readonly bool _guarded = mode != BatchMode.Never && ExitGuard.Arm();

    /// <summary>
    /// True while hits gather in batches; false while each is written as it happens. Held hits
    /// also need <see cref="_guarded"/>: without it, a batching session still writes each hit.
    /// </summary>
    private volatile bool _batching = mode == BatchMode.Always;

    /// <summary>
    /// Hits appended at the last <see cref="Adapt"/>, and by batches already forgotten (their
    /// threads exited): the session's rate comes from the batches' own numbering, so the hit path
    /// touches no counter shared between threads.
    /// </summary>
    private long _appendedBefore, _appendedByForgotten;
    private long _adaptedAt = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>Set once the app is exiting: no batching after that.</summary>
    private volatile bool _batchingStopped;

    /// <summary>
    /// Probes bound so far, and how many of them the filter fits. Written under the writer lock, so
    /// <see cref="BoundProbes"/> also numbers the probes: each binding's index is its value before.
    /// </summary>
    public int BoundProbes, FilterableProbes;

    /// <summary>Why the filter did not fit the first probe it did not fit.</summary>
    public string? FirstBindError;

    /// <summary>
    /// Set while this thread filters or encodes a hit. Encoding runs the app's ToString(); if
    /// that hits a traced probe again, the inner hit is dropped (and counted) instead of recursing.
    /// The filter itself calls no app code, but it sits inside the guard too, so that no future
    /// change to it can reopen the recursion.
    /// </summary>
    [ThreadStatic] private static bool t_forwarding;

    /// <summary>
    /// The calling thread's batches, one per trace session it hit in; nearly always one. A batch
    /// of an ended session is dropped from it the next time the thread needs a new one.
    /// </summary>
    [ThreadStatic] private static HitBatch?[]? t_batches;

    /// <summary>Every batch of this session, for the heartbeat, flush and exit to write out. Guarded by itself.</summary>
    private readonly System.Collections.Generic.List<HitBatch> _batches = [];
    private bool _closed;
    private int _nextBatch;

    protected internal override object? OnAttach(ProbeDescriptor probe)
    {
        int index = BoundProbes++;
        HitPredicate? predicate = null;
        if (where is not null)
        {
            predicate = where.Bind(probe, out string? error);
            if (predicate is null)
            {
                FirstBindError ??= error;
                return new ProbeState(index, null, Skip: true, null, [], default);
            }
        }
        FilterableProbes++;
        var kinds = new HitPayloadWriter.Kind[probe.Parameters.Count];
        var names = new System.Text.StringBuilder();
        for (int i = 0; i < kinds.Length; i++)
        {
            kinds[i] = HitPayloadWriter.KindOf(probe.Parameters[i].Type);
            names.Append(i == 0 ? "" : "\n").Append(probe.Parameters[i].Name);
        }
        // Before the probe can fire into this session: EventPipe stamps the Bind earlier than any
        // of its hits, and the CLI's reader delivers events in timestamp order.
        session.Source?.Bind(index, probe.Id, probe.Kind == ProbeKind.Static ? "static" : "method", names.ToString());
        return new ProbeState(index, predicate, Skip: false, rate > 0 ? new RateLimiter(rate) : null, kinds, HitPayloadWriter.KindOf(probe.ReturnType));
    }

    protected internal override void OnHit(in ProbeHit hit)
    {
        var state = (ProbeState)hit.State!;
        if (state.Skip)
            return;
        if (t_forwarding)
        {
            session.CountDropped();
            return;
        }
        t_forwarding = true;
        try
        {
            if (state.Predicate is not null && !state.Predicate(in hit))
                return;
            if (state.Limiter is not null && !state.Limiter.TryTake())
            {
                session.CountDropped();
                return;
            }
            if (session.Source is { } source)
                Forward(in hit, state, source);
        }
        finally
        {
            t_forwarding = false;
        }
    }

    private void Forward(in ProbeHit hit, ProbeState state, SessionEventSource source)
    {
        HitPayloadWriter payload = HitPayloadWriter.Begin();
        payload.WriteArguments(in hit, state.Kinds);
        bool isReturn = hit.Point == ProbePoint.Return;
        if (isReturn)
        {
            payload.WriteReturn(in hit, state.ReturnKind);
            payload.WriteException(hit.Exception is null ? null : $"{hit.Exception.GetType().FullName}: {Scrub(hit.Exception.Message, in hit)}");
        }
        if (payload.Overflowed)
        {
            session.CountDropped();
            return;
        }
        var header = new HitHeader(state.Index, hit.Point, hit.ThreadId, session.UnixNanos(hit.Timestamp), isReturn ? hit.ElapsedNanoseconds : 0);
        if (mode == BatchMode.Never)
        {
            source.WriteHit(header.Probe, (byte)header.Point, header.ThreadId, header.Timestamp, header.ElapsedNs, payload.Written);
            return;
        }
        // Written as it happens or not, a hit goes through its thread's batch: after any hit the
        // batch still holds, so a thread's hits stay in order when batching starts or stops.
        BatchOfThisThread()?.Append(source, in header, payload.Written, hit.Timestamp, writeNow: !_batching, mayHold: _guarded && !_batchingStopped);
    }

    /// <summary>
    /// Called on each heartbeat: an adaptive session starts batching once its rate passes
    /// <see cref="BatchAbovePerSecond"/>, and stops below <see cref="WriteThroughBelowPerSecond"/>,
    /// writing out what its batches hold.
    /// </summary>
    public void Adapt(SessionEventSource source)
    {
        if (mode != BatchMode.Adaptive)
            return;
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        long appended;
        lock (_batches)
        {
            appended = _appendedByForgotten;
            foreach (HitBatch batch in _batches)
                appended += batch.Appended;
        }
        double seconds = (now - _adaptedAt) / (double)System.Diagnostics.Stopwatch.Frequency;
        double perSecond = seconds > 0 ? (appended - _appendedBefore) / seconds : 0;
        _appendedBefore = appended;
        _adaptedAt = now;
        if (!_batching && perSecond > BatchAbovePerSecond && _guarded && !_batchingStopped)
            _batching = true;
        else if (_batching && perSecond < WriteThroughBelowPerSecond)
        {
            _batching = false;
            WriteBatches(source, wait: true);
        }
    }

    /// <summary>Stops batching for good and writes out what the batches hold: the app is exiting.</summary>
    public void StopBatching(SessionEventSource source)
    {
        _batchingStopped = true;
        _batching = false;
        WriteBatches(source, wait: true);
    }

    private HitBatch? BatchOfThisThread()
    {
        HitBatch?[]? batches = t_batches;
        if (batches is not null)
        {
            foreach (HitBatch? b in batches)
            {
                if (b is not null && ReferenceEquals(b.Owner, this))
                    return b;
            }
        }
        return NewBatch();
    }

    private HitBatch? NewBatch()
    {
        HitBatch batch;
        lock (_batches)
        {
            if (_closed)
                return null;
            batch = new HitBatch(this, _nextBatch++, Thread.CurrentThread);
            _batches.Add(batch);
        }
        HitBatch?[] batches = t_batches ?? new HitBatch?[1];
        int free = Array.FindIndex(batches, b => b is null || b.Owner._closed);
        if (free < 0)
        {
            free = batches.Length;
            Array.Resize(ref batches, batches.Length * 2);
        }
        batches[free] = batch;
        t_batches = batches;
        return batch;
    }

    /// <summary>
    /// Writes out every batch: with <paramref name="wait"/>, also those being appended to right
    /// now (a flush, the process's exit), else only those free (the heartbeat). Batches of threads
    /// that have exited are written and forgotten.
    /// </summary>
    public void WriteBatches(SessionEventSource source, bool wait)
    {
        lock (_batches)
        {
            for (int i = _batches.Count - 1; i >= 0; i--)
            {
                HitBatch batch = _batches[i];
                if (wait)
                    batch.Write(source, close: false);
                else
                    batch.TryWrite(source);
                if (!batch.Thread.IsAlive && batch.IsEmpty)
                {
                    _appendedByForgotten += batch.Appended;
                    _batches.RemoveAt(i);
                }
            }
        }
    }

    /// <summary>Writes out every batch, if <paramref name="source"/> is still there, and takes no more hits: the session is ending.</summary>
    public void Close(SessionEventSource? source)
    {
        _batching = false;
        lock (_batches)
        {
            if (_guarded && !_closed)
                ExitGuard.Disarm();
            _closed = true;
            foreach (HitBatch batch in _batches)
                batch.Write(source, close: true);
            _batches.Clear();
        }
    }

    /// <summary>
    /// An exception message with the text of every redacted string argument replaced: messages
    /// often quote their arguments (<c>card 4111... was declined</c>).
    /// </summary>
    private static string Scrub(string message, in ProbeHit hit)
    {
        for (int i = 0; i < hit.ArgumentCount; i++)
        {
            if (hit.Probe.IsArgumentRedacted(i) && hit.GetArgument(i) is string { Length: > 0 } secret)
                message = message.Replace(secret, ProbeRedaction.Placeholder, StringComparison.Ordinal);
        }
        return message;
    }

    /// <summary>Per-probe state: the session's index of the probe, the bound filter, the rate limiter, and how to read its arguments and return value.</summary>
    private sealed record ProbeState(int Index, HitPredicate? Predicate, bool Skip, RateLimiter? Limiter, HitPayloadWriter.Kind[] Kinds, HitPayloadWriter.Kind ReturnKind);
}

/// <summary>How a trace session writes its hits (see <see cref="TraceForwarder"/>).</summary>
internal enum BatchMode
{
    /// <summary>Each hit as it happens, until the session is busy; then in batches.</summary>
    Adaptive,

    /// <summary>One Hit event per hit: for a saved trace, whose viewers show each event with the stack it was written on.</summary>
    Never,

    /// <summary>Always in batches, as long as the app's exit can be seen coming.</summary>
    Always,
}
