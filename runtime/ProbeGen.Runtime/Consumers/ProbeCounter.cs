using System;
using System.Collections.Generic;
using System.Threading;

namespace ProbeGen;

/// <summary>
/// Counts hits per probe. Each probe gets its own cell at attach time, so a hit is one interlocked
/// increment with no lookup. Dispose to detach.
/// </summary>
public sealed class ProbeCounter : ProbeConsumer, IDisposable
{
    /// <summary>One cell per bound probe. Added under the runtime's writer lock; read under <see cref="_cellsLock"/>.</summary>
    private readonly List<(ProbeDescriptor Probe, Cell Cell)> _cells = [];
    private readonly Lock _cellsLock = new();

    internal ProbeCounter()
    {
    }

    /// <summary>The attachment that feeds the counter.</summary>
    public ProbeAttachment Attachment { get; internal set; } = null!;

    /// <summary>All hits counted, over every probe.</summary>
    public long Total
    {
        get
        {
            long sum = 0;
            lock (_cellsLock)
                foreach (var (_, cell) in _cells)
                    sum += Interlocked.Read(ref cell.Value);
            return sum;
        }
    }

    /// <summary>Hits per probe id (probes with the same id in two assemblies are added up).</summary>
    public IReadOnlyDictionary<string, long> ByProbe
    {
        get
        {
            var result = new Dictionary<string, long>(StringComparer.Ordinal);
            lock (_cellsLock)
                foreach (var (probe, cell) in _cells)
                    result[probe.Id] = result.GetValueOrDefault(probe.Id) + Interlocked.Read(ref cell.Value);
            return result;
        }
    }

    /// <summary>Detaches and waits for in-flight hits; the counts are final afterwards.</summary>
    public void Dispose() => Attachment.Dispose();

    /// <inheritdoc />
    protected internal override object? OnAttach(ProbeDescriptor probe)
    {
        var cell = new Cell();
        lock (_cellsLock)
            _cells.Add((probe, cell));
        return cell;
    }

    /// <inheritdoc />
    protected internal override void OnHit(in ProbeHit hit) => Interlocked.Increment(ref ((Cell)hit.State!).Value);

    private sealed class Cell
    {
        public long Value;
    }
}
