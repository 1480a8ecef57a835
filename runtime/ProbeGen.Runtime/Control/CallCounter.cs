using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Threading;

namespace ProbeGen.Control;

/// <summary>
/// A stats session's per-probe calls and errors: a method probe's call counted once, at its return
/// (entry and return would count it twice), with an error when it threw; a static probe's fire.
/// </summary>
internal sealed class CallCounter : ProbeConsumer
{
    private readonly ConcurrentDictionary<string, Counts> _byProbe = new(System.StringComparer.Ordinal);

    /// <summary>Calls and errors of one probe, updated with interlocked increments on the hit path.</summary>
    internal sealed class Counts
    {
        public long Calls;
        public long Errors;
    }

    /// <summary>The probes bound so far with their counts, in no particular order.</summary>
    public IEnumerable<KeyValuePair<string, Counts>> ByProbe => _byProbe;

    protected internal override object? OnAttach(ProbeDescriptor probe) => _byProbe.GetOrAdd(probe.Id, static _ => new Counts());

    protected internal override void OnHit(in ProbeHit hit)
    {
        var counts = (Counts)hit.State!;
        Interlocked.Increment(ref counts.Calls);
        if (hit.Exception is not null)
            Interlocked.Increment(ref counts.Errors);
    }
}
