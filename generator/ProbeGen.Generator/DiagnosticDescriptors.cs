using Microsoft.CodeAnalysis;

namespace ProbeGen.Generator;

/// <summary>Every diagnostic the generator reports. Ids are stable and sequential; see AnalyzerReleases.Unshipped.md.</summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "ProbeGen";
    private const string HelpBase = "https://github.com/probegen/probegen/blob/main/docs/generator/";

    private static DiagnosticDescriptor Error(string id, string title, string message) =>
        new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true, helpLinkUri: HelpBase + id + ".md");

    public static readonly DiagnosticDescriptor StaticProbeNotPartial = Error("PG0001",
        "A static probe must be a bodiless partial method",
        "The static probe '{0}' must be declared 'partial' without a body; the generator writes its body");

    public static readonly DiagnosticDescriptor StaticProbeHasBody = Error("PG0002",
        "A static probe's body is generated",
        "The static probe '{0}' already has an implementation; remove it, the generator writes the body");

    public static readonly DiagnosticDescriptor StaticProbeReturnsValue = Error("PG0003",
        "A static probe must return void",
        "The static probe '{0}' returns '{1}'; a static probe fires and returns nothing, so declare it 'void'");

    public static readonly DiagnosticDescriptor UnsupportedParameter = Error("PG0004",
        "Unsupported probe parameter",
        "The parameter '{0}' of probe '{1}' is {2}; {3}");

    public static readonly DiagnosticDescriptor TooManyParameters = Error("PG0005",
        "Too many probe parameters",
        "The probe '{0}' has {1} parameters; a probe carries at most 8, so group the rest in a type");

    public static readonly DiagnosticDescriptor DuplicateProbeId = Error("PG0006",
        "Duplicate probe id",
        "The probe id '{0}' is already used by '{1}' in this assembly; give one of them another name with [Probe(\"name\")] or another provider");

    public static readonly DiagnosticDescriptor InvalidProbeId = Error("PG0007",
        "Invalid probe provider or name",
        "The probe {0} '{1}' is not valid: it may not be empty or contain ':', '*', '?', whitespace or control characters");

    public static readonly DiagnosticDescriptor GenericStaticProbe = Error("PG0008",
        "A static probe cannot be generic",
        "The static probe '{0}' is generic or declared in a generic type; declare it in a non-generic type, with concrete parameter types");

    public static readonly DiagnosticDescriptor InaccessibleToGeneratedCode = Error("PG0009",
        "Probe not accessible to generated code",
        "The probe '{0}' uses '{1}', which {2}; generated code lives elsewhere in the assembly, so make it internal or public");

    public static readonly DiagnosticDescriptor UnsupportedMethodProbe = Error("PG0010",
        "Unsupported method probe",
        "The method probe '{0}' is {1}; {2}");
}
