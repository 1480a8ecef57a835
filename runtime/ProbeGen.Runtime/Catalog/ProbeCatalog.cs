using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.ComponentModel;
using System.Reflection;
using System.Runtime.CompilerServices;
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
        ProbeGen.Control.ExitGuard.NoteThread();
        string? name = assembly.GetName().Name;
        lock (Probes.WriterLock)
        {
            foreach (ProbeSite site in sites)
            {
                ArgumentNullException.ThrowIfNull(site);
                if (site.IsLinked || !Registry.TryAdd(site))
                    continue;
                site.Descriptor.Assembly = name;
                if (name is not null && site.Descriptor.MethodKey is { } key)
                    s_methodSites.TryAdd((name, key), site);
                Probes.BindNewSiteUnderLock(site);
            }
        }
        // The process now has probes: make it reachable by probegen. A session opened before the
        // control EventSource existed (launch mode) is applied right here, synchronously, after
        // these sites are registered (so it sees them) and before any of them can fire.
        Control.ControlEventSource.EnsureCreated();
    }

    /// <summary>Method probe sites by (declaring assembly, method key). Written under the writer lock of <see cref="Probes"/>; read locklessly.</summary>
    private static readonly ConcurrentDictionary<(string Assembly, string MethodKey), ProbeSite> s_methodSites = new();

    /// <summary>Intercepted call sites by (declaring assembly, method key), then by calling assembly. Written under its own lock.</summary>
    private static readonly Dictionary<(string Assembly, string MethodKey), Dictionary<string, int>> s_callSites = new();

    /// <summary>
    /// Records the call sites of method probes that an assembly's interceptors reach, so the catalog
    /// can say per probe which loaded code can fire it. Generated module initializers call it; the
    /// probes may live in assemblies that are not loaded yet.
    /// </summary>
    /// <param name="caller">The assembly whose code holds the intercepted calls.</param>
    /// <param name="calls">Per probed method, how many of its call sites are intercepted there.</param>
    [EditorBrowsable(EditorBrowsableState.Never)]
    public static void RegisterCallSites(Assembly caller, params ReadOnlySpan<InterceptedCalls> calls)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ProbeGen.Control.ExitGuard.NoteThread();
        string name = caller.GetName().Name ?? "?";
        lock (s_callSites)
        {
            foreach (InterceptedCalls call in calls)
            {
                if (!s_callSites.TryGetValue((call.DeclaringAssembly, call.MethodKey), out Dictionary<string, int>? byCaller))
                    s_callSites[(call.DeclaringAssembly, call.MethodKey)] = byCaller = new Dictionary<string, int>(StringComparer.Ordinal);
                byCaller[name] = call.Count;
            }
        }
    }

    internal static IReadOnlyList<ProbeCallSites> CallSitesOf(ProbeDescriptor descriptor)
    {
        if (descriptor.Assembly is not { } assembly || descriptor.MethodKey is not { } key)
            return [];
        lock (s_callSites)
        {
            if (!s_callSites.TryGetValue((assembly, key), out Dictionary<string, int>? byCaller))
                return [];
            var result = new List<ProbeCallSites>(byCaller.Count);
            foreach (KeyValuePair<string, int> entry in byCaller)
                result.Add(new ProbeCallSites(entry.Key, entry.Value));
            result.Sort(static (a, b) => string.CompareOrdinal(a.Assembly, b.Assembly));
            return result;
        }
    }

    /// <summary>
    /// The registered site of the method probe <paramref name="methodKey"/> declared in
    /// <paramref name="assemblyName"/>, or null. Runs that assembly's module initializer first, so
    /// the answer does not depend on which code ran before.
    /// </summary>
    /// <param name="assemblyName">The declaring assembly's simple name.</param>
    /// <param name="methodKey">The probed method's documentation-comment id (<see cref="ProbeDescriptor.MethodKey"/>).</param>
    /// <param name="requestingAssembly">The assembly that asks (it references the declaring one): the declaring assembly is loaded as it would resolve it.</param>
    public static ProbeSite? FindMethod(string assemblyName, string methodKey, Assembly? requestingAssembly = null)
    {
        ArgumentNullException.ThrowIfNull(assemblyName);
        ArgumentNullException.ThrowIfNull(methodKey);
        if (s_methodSites.TryGetValue((assemblyName, methodKey), out ProbeSite? site))
            return site;
        try
        {
            var name = new AssemblyName(assemblyName);
            Assembly assembly = requestingAssembly is not null && System.Runtime.Loader.AssemblyLoadContext.GetLoadContext(requestingAssembly) is { } context
                ? context.LoadFromAssemblyName(name)
                : Assembly.Load(name);
            RuntimeHelpers.RunModuleConstructor(assembly.ManifestModule.ModuleHandle);
        }
        catch (Exception ex) when (ex is System.IO.IOException or BadImageFormatException or TypeInitializationException)
        {
            return null;
        }
        return s_methodSites.TryGetValue((assemblyName, methodKey), out site) ? site : null;
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

/// <summary>How many call sites of one method probe an assembly's interceptors reach; generated code passes these to <see cref="ProbeCatalog.RegisterCallSites"/>.</summary>
/// <param name="DeclaringAssembly">The simple name of the assembly that declares the probed method.</param>
/// <param name="MethodKey">The probed method's documentation-comment id.</param>
/// <param name="Count">The intercepted call sites.</param>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly record struct InterceptedCalls(string DeclaringAssembly, string MethodKey, int Count);
