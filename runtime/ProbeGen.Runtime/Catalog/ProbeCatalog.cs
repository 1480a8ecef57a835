using System;
using System.Collections.Generic;
using System.Reflection;
using ProbeGen.Registry;

namespace ProbeGen;

/// <summary>
/// Every probe of every loaded assembly. Generated code registers each probed assembly's sites
/// from a module initializer; consumers enumerate and look them up here.
/// </summary>
public static class ProbeCatalog
{
    /// <summary>The sites, keyed by id and registration serial. Read locklessly; written under the writer lock of <see cref="Probes"/>.</summary>
    internal static LocklessRegistry<ProbeKey, ProbeSite> Registry { get; } =
        new(Probes.Domain, ProbeKey.Comparer, ProbeKey.Comparer);

    /// <summary>
    /// Registers an assembly's probe sites and binds the live pattern attachments that match them.
    /// Generated module initializers call it; it does not throw for a site that is already registered.
    /// </summary>
    /// <param name="assembly">The assembly that declares the probes.</param>
    /// <param name="sites">Its sites.</param>
    public static void Register(Assembly assembly, params ReadOnlySpan<ProbeSite> sites)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        string? name = assembly.GetName().Name;
        lock (Probes.WriterLock)
        {
            foreach (ProbeSite site in sites)
            {
                ArgumentNullException.ThrowIfNull(site);
                if (site.IsLinked || !Registry.TryAdd(site))
                    continue;
                site.Descriptor.Assembly = name;
                Probes.BindNewSiteUnderLock(site);
            }
        }
        // The process now has probes: make it reachable by probegen. A session opened before the
        // control EventSource existed (launch mode) is applied right here, synchronously, after
        // these sites are registered (so it sees them) and before any of them can fire.
        Control.ControlEventSource.EnsureCreated();
    }

    /// <summary>Every registered probe, ordered by id.</summary>
    public static IReadOnlyList<ProbeDescriptor> All
    {
        get
        {
            IReadOnlyList<ProbeSite> sites = Registry.Snapshot();
            var result = new ProbeDescriptor[sites.Count];
            for (int i = 0; i < result.Length; i++)
                result[i] = sites[i].Descriptor;
            return result;
        }
    }

    /// <summary>Every registered site, ordered by id.</summary>
    public static IReadOnlyList<ProbeSite> Sites => Registry.Snapshot();

    /// <summary>The first registered site with <paramref name="id"/>, or null.</summary>
    public static ProbeSite? Find(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        foreach (ProbeSite site in Registry.Range(ProbeKey.First(id), new ProbeKey(id, long.MaxValue)))
            return site;
        return null;
    }

    /// <summary>The registered sites whose ids match <paramref name="pattern"/>, ordered by id.</summary>
    /// <exception cref="ArgumentException">The pattern is not valid.</exception>
    public static IReadOnlyList<ProbeSite> Match(string pattern) => MatchUnderLock(ProbePattern.Parse(pattern));

    /// <summary>
    /// Matching sites. Uses the ordered keys: an exact id or a literal prefix scans only its range.
    /// Lockless; named for its callers that hold the writer lock and need the answer to stay true.
    /// </summary>
    internal static List<ProbeSite> MatchUnderLock(ProbePattern pattern)
    {
        var result = new List<ProbeSite>();
        string prefix = pattern.LiteralPrefix;
        // Every id that starts with the prefix sorts at or after it and before prefix + U+FFFF.
        ProbeKey low = ProbeKey.First(prefix);
        ProbeKey high = pattern.IsExact ? new ProbeKey(prefix, long.MaxValue) : ProbeKey.First(prefix + char.MaxValue);
        foreach (ProbeSite site in Registry.Range(low, high))
            if (pattern.Matches(site.Descriptor.Id))
                result.Add(site);
        return result;
    }
}
