using System;
using System.Collections.Generic;
using System.Diagnostics;

namespace ProbeGen;

/// <summary>Records hits into <see cref="ProbeMeter"/>'s instruments; what it needs per probe is worked out once, at bind.</summary>
internal sealed class MetricsConsumer(ProbeMetricsOptions options) : ProbeConsumer
{
    protected internal override object? OnAttach(ProbeDescriptor probe)
    {
        var tagged = new List<int>();
        foreach (string name in options.TagArguments)
        {
            int index = probe.IndexOfParameter(name);
            if (index >= 0 && !probe.IsArgumentRedacted(index))
                tagged.Add(index);
        }
        var histograms = new List<(int Index, KeyValuePair<string, object?> Tag)>();
        foreach (string name in options.ArgumentHistograms)
        {
            int index = probe.IndexOfParameter(name);
            if (index >= 0 && !probe.IsArgumentRedacted(index))
                histograms.Add((index, new(ProbeMeter.ArgumentTag, name)));
        }
        return new ProbeState(new(ProbeMeter.ProbeTag, probe.Id), tagged.ToArray(), histograms.ToArray());
    }

    protected internal override void OnHit(in ProbeHit hit)
    {
        var state = (ProbeState)hit.State!;
        TagList tags = default;
        tags.Add(state.ProbeTag);
        foreach (int index in state.TaggedArguments)
            tags.Add(hit.Probe.Parameters[index].Name, TagValue(hit.GetArgument(index)));
        ProbeMeter.Calls.Add(1, in tags);
        if (hit.Point == ProbePoint.Return)
        {
            ProbeMeter.Duration.Record(hit.ElapsedNanoseconds / 1e9, in tags);
            if (hit.Exception is { } exception)
            {
                TagList errorTags = tags;
                errorTags.Add(ProbeMeter.ErrorTypeTag, exception.GetType().FullName);
                ProbeMeter.Errors.Add(1, in errorTags);
            }
        }
        foreach (var (index, tag) in state.ArgumentHistograms)
        {
            if (hit.TryGetArgumentAsInt64(index, out long value))
                ProbeMeter.Arguments.Record(value, state.ProbeTag, tag);
            else if (hit.GetArgument(index) is IConvertible number and (double or float or decimal))
                ProbeMeter.Arguments.Record(number.ToDouble(null), state.ProbeTag, tag);
        }
    }

    /// <summary>A tag value exporters can carry without calling the app's code: primitives and strings as they are, enums by name, anything else by type name.</summary>
    private static object? TagValue(object? value) => value switch
    {
        null or string or bool or int or long or double => value,
        Enum e => e.ToString(),
        IConvertible c when c.GetTypeCode() is >= TypeCode.SByte and <= TypeCode.Decimal => c.ToDouble(null),
        _ => value.GetType().Name,
    };

    private sealed record ProbeState(KeyValuePair<string, object?> ProbeTag, int[] TaggedArguments, (int Index, KeyValuePair<string, object?> Tag)[] ArgumentHistograms);
}
