using System;
using System.Collections.Generic;
using System.Text;
using System.Threading;

namespace ProbeGen;

/// <summary>
/// A <see cref="Log2Histogram"/> per probe, of method latency in nanoseconds or of a numeric
/// argument. Hits whose value is not numeric are counted in <see cref="Skipped"/>. Dispose to detach.
/// </summary>
public sealed class ProbeHistogram : ProbeConsumer, IDisposable
{
    private readonly string? _argument;
    private readonly List<(ProbeDescriptor Probe, State State)> _states = [];
    private readonly Lock _statesLock = new();
    private long _skipped;

    internal ProbeHistogram(string? argument) => _argument = argument;

    /// <summary>The attachment that feeds the histogram.</summary>
    public ProbeAttachment Attachment { get; internal set; } = null!;

    /// <summary>The argument recorded, or null for latency.</summary>
    public string? Argument => _argument;

    /// <summary>Hits not recorded: the probe lacks the argument, or its value is not numeric.</summary>
    public long Skipped => Interlocked.Read(ref _skipped);

    /// <summary>The histogram of each bound probe.</summary>
    public IReadOnlyList<(ProbeDescriptor Probe, Log2Histogram Histogram)> ByProbe
    {
        get
        {
            lock (_statesLock)
                return _states.ConvertAll(s => (s.Probe, s.State.Histogram));
        }
    }

    /// <summary>Renders each non-empty histogram under its probe id, as bpftrace prints <c>@name</c> maps.</summary>
    public string Render()
    {
        var text = new StringBuilder();
        foreach (var (probe, histogram) in ByProbe)
        {
            if (histogram.Count == 0)
                continue;
            text.Append('@').Append(probe.Id).Append(_argument is null ? " latency (ns)" : $" {_argument}").AppendLine(":");
            text.Append(histogram.Render()).AppendLine();
        }
        return text.ToString();
    }

    /// <summary>Detaches and waits for in-flight hits; the histograms are final afterwards.</summary>
    public void Dispose() => Attachment.Dispose();

    /// <inheritdoc />
    protected internal override object? OnAttach(ProbeDescriptor probe)
    {
        var state = new State(new Log2Histogram(), _argument is null ? -1 : probe.IndexOfParameter(_argument));
        lock (_statesLock)
            _states.Add((probe, state));
        return state;
    }

    /// <inheritdoc />
    protected internal override void OnHit(in ProbeHit hit)
    {
        var state = (State)hit.State!;
        if (_argument is null)
        {
            if (hit.Point == ProbePoint.Return)
                state.Histogram.Record(hit.ElapsedNanoseconds);
            return;
        }
        if (state.ArgumentIndex >= 0 && hit.TryGetArgumentAsInt64(state.ArgumentIndex, out long value))
            state.Histogram.Record(value);
        else
            Interlocked.Increment(ref _skipped);
    }

    private sealed record State(Log2Histogram Histogram, int ArgumentIndex);
}
