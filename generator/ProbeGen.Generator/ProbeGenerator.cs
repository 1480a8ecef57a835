using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;

namespace ProbeGen.Generator;

/// <summary>
/// Generates probe sites for [Probe] methods: bodies for static (bodiless partial) probes,
/// interceptors for every call that can reach a method probe (of this assembly or of a referenced
/// one, directly or through an interface or virtual member), and the catalog registration.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class ProbeGenerator : IIncrementalGenerator
{
    /// <summary>Tracking names of the pipeline steps, for incrementality tests.</summary>
    public static class Steps
    {
        public const string Probes = nameof(Probes);
        public const string ProbeSpecs = nameof(ProbeSpecs);
        public const string ProbedTypes = nameof(ProbedTypes);
        public const string CallNames = nameof(CallNames);
        public const string CallSites = nameof(CallSites);
        public const string ReferencedProbes = nameof(ReferencedProbes);
        public const string Interception = nameof(Interception);
        public const string AssemblyName = nameof(AssemblyName);
    }

    /// <inheritdoc />
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        // Every member with [Probe], parsed into an equatable spec and its diagnostics.
        IncrementalValuesProvider<ParseResult> parsed = context.SyntaxProvider
            .ForAttributeWithMetadataName(Parser.ProbeAttributeName, Parser.IsProbeTarget, Parser.ParseProbe)
            .WithTrackingName(Steps.Probes);

        // Diagnostics have their own output, so the source outputs key only on the specs.
        context.RegisterSourceOutput(parsed.SelectMany(static (r, _) => r.Diagnostics),
            static (spc, diagnostic) => spc.ReportDiagnostic(diagnostic.ToDiagnostic()));

        // A rejected static probe still gets a body, so its only error is the generator's.
        context.RegisterSourceOutput(parsed.Where(static r => r.Stub is not null).Select(static (r, _) => r.Stub!),
            static (spc, stub) => spc.AddSource(stub.HintName, Emitter.EmitStub(stub)));

        // All valid specs, with duplicate ids removed (and reported).
        IncrementalValueProvider<(ImmutableArray<ProbeSpec> Unique, ImmutableArray<DiagnosticInfo> Diagnostics)> probes = parsed
            .Where(static r => r.Spec is not null)
            .Select(static (r, _) => r.Spec!)
            .Collect()
            .Select(static (all, _) => Parser.RemoveDuplicates(all))
            .WithTrackingName(Steps.ProbeSpecs);
        context.RegisterSourceOutput(probes.SelectMany(static (p, _) => p.Diagnostics),
            static (spc, diagnostic) => spc.ReportDiagnostic(diagnostic.ToDiagnostic()));

        IncrementalValueProvider<string> assemblyName = context.CompilationProvider
            .Select(static (c, _) => c.AssemblyName ?? "Assembly")
            .WithTrackingName(Steps.AssemblyName);

        // The project's directory (a compiler-visible property the package's props expose), so that
        // descriptors carry source paths relative to it, never the build machine's.
        IncrementalValueProvider<string> projectDirectory = context.AnalyzerConfigOptionsProvider
            .Select(static (o, _) => o.GlobalOptions.TryGetValue("build_property.projectdir", out string? dir) ? dir : "");

        // One source output per probed type: its sites and static probe bodies.
        IncrementalValuesProvider<ProbedType> probedTypes = probes
            .SelectMany(static (p, _) => p.Unique.GroupBy(s => s.ContainingTypeKey)
                .Select(g => new ProbedType(g.Key, g.ToEquatableArray())))
            .WithTrackingName(Steps.ProbedTypes);
        context.RegisterSourceOutput(probedTypes.Combine(assemblyName).Combine(projectDirectory), static (spc, input) =>
            spc.AddSource($"{input.Left.Left.Key}.Probes.g.cs", Emitter.EmitType(Emitter.SitesClass(input.Left.Right), input.Left.Left, input.Right)));

        // The method probes of referenced assemblies, which calls here may reach too.
        IncrementalValueProvider<EquatableArray<ProbeSpec>> referenced = context.CompilationProvider
            .Select(static (c, ct) => Parser.ReferencedProbes(c, ct))
            .WithTrackingName(Steps.ReferencedProbes);

        // The names a call may use to reach a probe: only invocations of these are ever bound.
        IncrementalValueProvider<EquatableArray<string>> callNames = probes.Combine(referenced)
            .Select(static (input, _) => Parser.CallNames(input.Left.Unique, input.Right))
            .WithTrackingName(Steps.CallNames);

        // Every invocation, by the name it calls (syntax only), then those that may reach a probe, bound.
        IncrementalValueProvider<EquatableArray<CallSiteSpec>> calls = context.SyntaxProvider
            .CreateSyntaxProvider(Parser.IsCandidateCall, static (ctx, _) => (Node: (Microsoft.CodeAnalysis.CSharp.Syntax.InvocationExpressionSyntax)ctx.Node, Name: Parser.InvokedName(ctx.Node)))
            .Combine(callNames)
            .Where(static input => input.Right.SortedContains(input.Left.Name, System.StringComparer.Ordinal))
            .Select(static (input, _) => input.Left.Node)
            .Collect()
            .Combine(context.CompilationProvider)
            .Select(static (input, ct) => Parser.ParseCallSites(input.Left, input.Right, ct))
            .WithTrackingName(Steps.CallSites);

        // Which calls reach which probes: the interceptors and the per-probe call-site counts.
        IncrementalValueProvider<InterceptionPlan> plan = calls.Combine(probes).Combine(referenced).Combine(assemblyName)
            .Select(static (input, _) => CallSiteMatcher.Plan(input.Left.Left.Left, input.Left.Left.Right.Unique, input.Left.Right, input.Right))
            .WithTrackingName(Steps.Interception);

        IncrementalValuesProvider<InterceptorFile> interceptorFiles = plan.SelectMany(static (p, _) => p.Files);
        context.RegisterSourceOutput(interceptorFiles.Combine(assemblyName), static (spc, input) =>
            spc.AddSource(input.Left.HintName, Emitter.EmitInterceptors(Emitter.SitesClass(input.Right), input.Left)));

        // One registration: the assembly's sites, and the call sites its interceptors reach.
        context.RegisterSourceOutput(probes.Combine(plan).Combine(assemblyName), static (spc, input) =>
        {
            var ((probeSet, interception), name) = input;
            if (probeSet.Unique.IsEmpty && interception.Counts.Count == 0)
                return;
            spc.AddSource("ProbeGen.Registration.g.cs", Emitter.EmitRegistration(Emitter.SitesClass(name), probeSet.Unique, interception.Counts.ToList()));
        });
    }
}
