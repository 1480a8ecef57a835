using System;
using System.Diagnostics;

namespace ProbeGen;

/// <summary>What <see cref="ProbeSpans.Enable(string, ProbeSpanOptions?)"/> puts on each span.</summary>
public sealed record ProbeSpanOptions
{
    /// <summary>The defaults: arguments as tags, strings clipped to <see cref="MaxTagLength"/>.</summary>
    public static ProbeSpanOptions Default { get; } = new();

    /// <summary>Whether arguments become tags (<c>probe.arg.NAME</c>). Redacted ones read <see cref="ProbeRedaction.Placeholder"/>.</summary>
    public bool ArgumentTags { get; init; } = true;

    /// <summary>The longest string tag, in characters; longer ones are clipped.</summary>
    public int MaxTagLength
    {
        get;
        init => field = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(MaxTagLength), value, "MaxTagLength must be at least 1.");
    } = 256;
}

/// <summary>
/// Makes each call of a method probe an <see cref="Activity"/> of the <see cref="ActivitySource"/>
/// named <c>ProbeGen</c>: a child of the current activity (an ASP.NET Core request's, say), current
/// itself while the call runs so the call's own spans nest under it, and for an awaitable ended when
/// its task completes. An exception is recorded as an event and sets the error status.
/// </summary>
public static class ProbeSpans
{
    /// <summary>The source's name: what <c>AddSource</c> asks for.</summary>
    public const string SourceName = "ProbeGen";

    /// <summary>The source every probe span comes from.</summary>
    public static readonly ActivitySource Source = new(SourceName, typeof(ProbeSpans).Assembly.GetName().Version?.ToString());

    /// <summary>
    /// Makes spans of the calls of the method probes matching <paramref name="pattern"/>, now and
    /// registered later, until the returned attachment is disposed. A span is made only while a
    /// listener (an OpenTelemetry TracerProvider) samples the source; otherwise a call costs a check.
    /// </summary>
    /// <param name="pattern">A <see cref="ProbePattern"/>.</param>
    /// <param name="options">Tags; <see cref="ProbeSpanOptions.Default"/> when null.</param>
    public static ProbeAttachment Enable(string pattern, ProbeSpanOptions? options = null) => Enable(ProbePattern.Parse(pattern), options);

    /// <inheritdoc cref="Enable(string, ProbeSpanOptions?)"/>
    public static ProbeAttachment Enable(ProbePattern pattern, ProbeSpanOptions? options = null) =>
        Probes.Attach(pattern, new SpanConsumer(options ?? ProbeSpanOptions.Default),
            ProbeAttachOptions.Default with { Points = ProbePoints.Entry | ProbePoints.Return });

    /// <summary>
    /// Called by a method probe site when a call returned an awaitable that has not completed: the
    /// call's span stays open until the task completes, but the caller's flow goes on under the
    /// span that was current before the call, not under the pending one.
    /// </summary>
    internal static void LeavePending(ProbeDescriptor probe)
    {
        if (Activity.Current is { } current && ReferenceEquals(current.Source, Source) && ReferenceEquals(current.OperationName, probe.Id))
            Activity.Current = current.Parent;
    }

    /// <summary>The open span of a call of <paramref name="probe"/> on this flow: the current activity or, if the call left one of its own current, an ancestor.</summary>
    internal static Activity? OpenSpanOf(ProbeDescriptor probe)
    {
        Activity? activity = Activity.Current;
        for (int depth = 0; activity is not null && depth < 8; depth++, activity = activity.Parent)
            if (ReferenceEquals(activity.Source, Source) && ReferenceEquals(activity.OperationName, probe.Id))
                return activity;
        return null;
    }
}
