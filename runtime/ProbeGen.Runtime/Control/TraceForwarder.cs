using System;

namespace ProbeGen.Control;

/// <summary>
/// A trace session's consumer: filters each hit, applies the rate limit, serialises what passes
/// (redacted values as <see cref="ProbeRedaction.Placeholder"/>) and writes it to the session.
/// Attached once with all of the session's patterns, so each probe is delivered once.
/// </summary>
internal sealed class TraceForwarder(ControlSession session, WhereFilter? where, long rate) : ProbeConsumer
{
    /// <summary>Probes bound so far, and how many of them the filter fits. Written under the writer lock.</summary>
    public int BoundProbes, FilterableProbes;

    /// <summary>Why the filter did not fit the first probe it did not fit.</summary>
    public string? FirstBindError;

    /// <summary>
    /// Set while this thread filters or serialises a hit. Serialising runs the app's ToString(); if
    /// that hits a traced probe again, the inner hit is dropped (and counted) instead of recursing.
    /// The filter itself calls no app code, but it sits inside the guard too, so that no future
    /// change to it can reopen the recursion.
    /// </summary>
    [ThreadStatic] private static bool t_forwarding;

    protected internal override object? OnAttach(ProbeDescriptor probe)
    {
        BoundProbes++;
        HitPredicate? predicate = null;
        if (where is not null)
        {
            predicate = where.Bind(probe, out string? error);
            if (predicate is null)
            {
                FirstBindError ??= error;
                return new ProbeState(null, Skip: true, null);
            }
        }
        FilterableProbes++;
        return new ProbeState(predicate, Skip: false, rate > 0 ? new RateLimiter(rate) : null);
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
                Forward(in hit, source);
        }
        finally
        {
            t_forwarding = false;
        }
    }

    private void Forward(in ProbeHit hit, SessionEventSource source)
    {
        string point = hit.Point switch { ProbePoint.Fire => "fire", ProbePoint.Entry => "entry", _ => "return" };
        string exception = hit.Exception is null ? "" : $"{hit.Exception.GetType().FullName}: {Scrub(hit.Exception.Message, in hit)}";
        source.Hit(hit.Probe.Id, point, hit.ThreadId, session.UnixNanos(hit.Timestamp), HitJson.Arguments(in hit),
            hit.Point == ProbePoint.Return ? HitJson.Return(in hit) : "", hit.Point == ProbePoint.Return ? hit.ElapsedNanoseconds : 0, exception);
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

    /// <summary>Per-probe state: the bound filter and the rate limiter.</summary>
    private sealed record ProbeState(HitPredicate? Predicate, bool Skip, RateLimiter? Limiter);
}
