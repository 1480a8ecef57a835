using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;

namespace ProbeGen.Generator;

/// <summary>
/// Decides which calls get an interceptor and which probes each may reach: a call reaches a
/// method probe when it names the probed method, or a member the method implements or overrides,
/// on a receiver whose static type could hold an instance of the probe's type.
/// </summary>
internal static class CallSiteMatcher
{
    public static InterceptionPlan Plan(EquatableArray<CallSiteSpec> calls, ImmutableArray<ProbeSpec> own, EquatableArray<ProbeSpec> referenced, string assemblyName)
    {
        var byDispatchKey = new Dictionary<string, List<ProbeSpec>>();
        foreach (ProbeSpec probe in own.Where(p => p.Shape == ProbeShape.Method).Concat(referenced))
            foreach (string key in probe.DispatchKeys)
            {
                if (!byDispatchKey.TryGetValue(key, out List<ProbeSpec>? list))
                    byDispatchKey[key] = list = [];
                list.Add(probe);
            }

        // Calls with the same target and the same reachable probes share one interceptor.
        var groups = new Dictionary<string, (CallSiteSpec First, List<CandidateSpec> Candidates, List<CallLocation> Locations)>();
        var counts = new Dictionary<(string, string), int>();
        foreach (CallSiteSpec call in calls)
        {
            if (!byDispatchKey.TryGetValue(call.TargetKey, out List<ProbeSpec>? probes))
                continue;
            var candidates = new List<CandidateSpec>();
            foreach (ProbeSpec probe in probes.OrderBy(p => p.MethodKey, System.StringComparer.Ordinal).ThenBy(p => p.AssemblyName, System.StringComparer.Ordinal))
            {
                bool direct = probe.DispatchKeys[0] == call.TargetKey;
                if (!call.IsVirtualCall && !direct)
                    continue;
                if (call.ReceiverKeys.Count > 0 && !Related(call, probe))
                    continue;
                bool needsCheck = call.IsVirtualCall && !(direct && !probe.Overridable);
                candidates.Add(new CandidateSpec(probe, probe.AssemblyName == assemblyName, needsCheck));
            }
            if (candidates.Count == 0)
                continue;
            string groupKey = call.TargetKey + "|" + string.Join("|", candidates.Select(c => c.Probe.AssemblyName + "/" + c.Probe.MethodKey + "/" + c.NeedsCheck));
            if (!groups.TryGetValue(groupKey, out var group))
                groups[groupKey] = group = (call, candidates, []);
            group.Locations.Add(new CallLocation(call.Version, call.Data, call.Display));
            foreach (CandidateSpec candidate in candidates)
            {
                var countKey = (candidate.Probe.AssemblyName, candidate.Probe.MethodKey);
                counts[countKey] = counts.TryGetValue(countKey, out int n) ? n + 1 : 1;
            }
        }

        // One file for every interceptor: the compiler pays for each generated file that declares
        // its own file-local attribute and class, far more than for the interceptors themselves.
        var interceptors = new List<InterceptorSpec>();
        foreach (var entry in groups.OrderBy(g => g.Key, System.StringComparer.Ordinal))
        {
            var (first, candidates, locations) = entry.Value;
            interceptors.Add(new InterceptorSpec(ProbeSpec.Sanitize(first.Target.MethodName.TrimStart('@')) + "_" + interceptors.Count, first.Target,
                candidates.ToEquatableArray(), locations.OrderBy(l => l.Data, System.StringComparer.Ordinal).ToEquatableArray()));
        }
        var files = interceptors.Count == 0 ? new List<InterceptorFile>() : [new InterceptorFile("ProbeGen.Interceptors.g.cs", interceptors.ToEquatableArray())];
        return new InterceptionPlan(files.ToEquatableArray(),
            counts.OrderBy(c => c.Key.Item1, System.StringComparer.Ordinal).ThenBy(c => c.Key.Item2, System.StringComparer.Ordinal)
                .Select(c => new CallSiteCount(c.Key.Item1, c.Key.Item2, c.Value)).ToEquatableArray());
    }

    /// <summary>The call's static receiver type and the probe's type are one the other's ancestor, so the receiver may be an instance of the probe's type.</summary>
    private static bool Related(CallSiteSpec call, ProbeSpec probe) =>
        probe.AncestorKeys.Contains(call.ReceiverKeys[0]) || call.ReceiverKeys.Contains(probe.AncestorKeys[0]);
}
