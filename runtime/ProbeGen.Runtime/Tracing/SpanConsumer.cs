using System;
using System.Diagnostics;

namespace ProbeGen;

/// <summary>Starts a span at a method probe's entry and ends it at its return (see <see cref="ProbeSpans"/>).</summary>
internal sealed class SpanConsumer(ProbeSpanOptions options) : ProbeConsumer
{
    protected internal override object? OnAttach(ProbeDescriptor probe) => probe.Kind == ProbeKind.Method ? probe : null;

    protected internal override void OnHit(in ProbeHit hit)
    {
        if (hit.State is not ProbeDescriptor probe)
            return;
        if (hit.Point == ProbePoint.Entry)
        {
            // The probe id is the operation name, interned in the descriptor, so that the return
            // hit and the pending hand-off find this span by reference.
            Activity? span = ProbeSpans.Source.StartActivity(probe.Id, ActivityKind.Internal);
            if (span is null)
                return;
            span.SetTag(ProbeMeter.ProbeTag, probe.Id);
            if (options.ArgumentTags && span.IsAllDataRequested)
            {
                for (int i = 0; i < hit.ArgumentCount && i < probe.Parameters.Count; i++)
                    span.SetTag("probe.arg." + probe.Parameters[i].Name, probe.IsArgumentRedacted(i) ? ProbeRedaction.Placeholder : TagValue(hit.GetArgument(i)));
            }
            return;
        }
        Activity? open = ProbeSpans.OpenSpanOf(probe);
        if (open is null)
            return;
        if (hit.Exception is { } exception)
        {
            open.AddException(exception);
            open.SetStatus(ActivityStatusCode.Error, exception.GetType().FullName);
        }
        bool current = ReferenceEquals(Activity.Current, open);
        open.Stop();
        if (!current)
            Activity.Current = open.Parent;
    }

    /// <summary>A tag value that needs no app code: primitives and strings (clipped) as they are, enums by name, anything else by its type's name.</summary>
    private object? TagValue(object? value) => value switch
    {
        null or bool or int or long or double or float or decimal or short or byte or uint or ulong => value,
        string s => s.Length <= options.MaxTagLength ? s : s[..options.MaxTagLength] + "...",
        Enum e => e.ToString(),
        _ => value.GetType().Name,
    };
}
