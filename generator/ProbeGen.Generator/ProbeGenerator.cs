using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;

namespace ProbeGen.Generator;

/// <summary>
/// Generates probe sites for [Probe] methods: bodies for static (bodiless partial) probes,
/// interceptors for every call of a method probe, and the catalog registration.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class ProbeGenerator : IIncrementalGenerator
{
    /// <summary>Tracking names of the pipeline steps, for incrementality tests.</summary>
    public static class Steps
    {
        public const string Probes = nameof(Probes);
        public const string ProbeSpecs = nameof(ProbeSpecs);
        public const string CallSites = nameof(CallSites);
        public const string AssemblyName = nameof(AssemblyName);
    }

    /// <inheritdoc />
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        // Every method with [Probe], parsed into an equatable spec and its diagnostics.
        IncrementalValuesProvider<ParseResult> parsed = context.SyntaxProvider
            .ForAttributeWithMetadataName(Parser.ProbeAttributeName,
                static (node, _) => node is Microsoft.CodeAnalysis.CSharp.Syntax.MethodDeclarationSyntax,
                Parser.ParseProbe)
            .WithTrackingName(Steps.Probes);

        // Diagnostics have their own output, so the source outputs key only on the specs.
        context.RegisterSourceOutput(parsed.SelectMany(static (r, _) => r.Diagnostics),
            static (spc, diagnostic) => spc.ReportDiagnostic(diagnostic.ToDiagnostic()));

        // All valid specs, with duplicate ids removed (and reported).
        IncrementalValueProvider<(ImmutableArray<ProbeSpec> Unique, ImmutableArray<DiagnosticInfo> Diagnostics)> probes = parsed
            .Where(static r => r.Spec is not null)
            .Select(static (r, _) => r.Spec!)
            .Collect()
            .Select(static (all, _) => Parser.RemoveDuplicates(all))
            .WithTrackingName(Steps.ProbeSpecs);
        context.RegisterSourceOutput(probes.SelectMany(static (p, _) => p.Diagnostics),
            static (spc, diagnostic) => spc.ReportDiagnostic(diagnostic.ToDiagnostic()));

        // Every call of a method probe, as an interceptable location.
        IncrementalValueProvider<ImmutableArray<CallSiteSpec>> calls = context.SyntaxProvider
            .CreateSyntaxProvider(Parser.IsCandidateCall, Parser.ParseCallSite)
            .Where(static c => c is not null)
            .Select(static (c, _) => c!)
            .Collect()
            .WithTrackingName(Steps.CallSites);

        IncrementalValueProvider<string> sitesClass = context.CompilationProvider
            .Select(static (c, _) => Emitter.SitesClass(c.AssemblyName ?? "Assembly"))
            .WithTrackingName(Steps.AssemblyName);

        // One file per probed type, and one registration file.
        context.RegisterSourceOutput(probes.Combine(calls).Combine(sitesClass), static (spc, input) =>
        {
            var ((probeSet, callSites), sites) = input;
            ImmutableArray<ProbeSpec> unique = probeSet.Unique;
            if (unique.IsEmpty)
                return;
            foreach (var byType in unique.GroupBy(p => p.ContainingTypeKey))
            {
                ImmutableArray<ProbeSpec> typeProbes = byType.ToImmutableArray();
                var keys = typeProbes.Select(p => p.MethodKey).ToImmutableHashSet();
                ImmutableArray<CallSiteSpec> typeCalls = callSites.Where(c => keys.Contains(c.MethodKey)).ToImmutableArray();
                spc.AddSource($"{byType.Key}.Probes.g.cs", Emitter.EmitType(sites, typeProbes, typeCalls));
            }
            spc.AddSource("ProbeGen.Registration.g.cs", Emitter.EmitRegistration(sites, unique));
        });
    }
}
