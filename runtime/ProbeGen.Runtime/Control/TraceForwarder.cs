using System;

namespace ProbeGen.Control;

/// <summary>
/// A trace session's consumer: filters each hit, applies the rate limit, encodes what passes
/// (redacted values as <see cref="HitValueTag.Redacted"/>) and writes it to the session in the
/// layout of <see cref="HitLayout"/>. Attached once with all of the session's patterns, so each
/// probe is delivered once; each probe it binds gets the next index and a Bind event that names it.
/// </summary>
internal sealed class TraceForwarder(ControlSession session, WhereFilter? where, long rate) : ProbeConsumer
{
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
        source.WriteHit(state.Index, (byte)hit.Point, hit.ThreadId, session.UnixNanos(hit.Timestamp), isReturn ? hit.ElapsedNanoseconds : 0, payload.Written);
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
