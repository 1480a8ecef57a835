using Microsoft.CodeAnalysis;

namespace ProbeGen.Analyzers;

/// <summary>Every ProbeGen analyzer rule, with stable sequential ids and a help page in docs/analyzers.</summary>
internal static class Descriptors
{
    private const string HelpBase = "https://github.com/probegen/probegen/blob/main/docs/analyzers/";

    private static DiagnosticDescriptor Rule(string id, string category, DiagnosticSeverity severity, string title, string message) =>
        new(id, title, message, category, severity, isEnabledByDefault: true, helpLinkUri: HelpBase + id + ".md");

    public static readonly DiagnosticDescriptor BlockingCall = Rule("PG1001", "ProbeGen.HotPath", DiagnosticSeverity.Warning,
        "A blocking call in a probe handler",
        "'{0}' blocks the probed thread inside a probe handler; {1}");

    public static readonly DiagnosticDescriptor GracePeriodWait = Rule("PG1002", "ProbeGen.HotPath", DiagnosticSeverity.Error,
        "A grace-period wait in a probe handler",
        "'{0}' waits for a grace period, which waits for this handler: a deadlock; use DetachDeferred(), which returns at once");

    public static readonly DiagnosticDescriptor AsyncHandler = Rule("PG1003", "ProbeGen.HotPath", DiagnosticSeverity.Warning,
        "An async probe handler",
        "The probe handler '{0}' is async: everything after its first await runs outside the read-side section, and its exceptions escape containment; make it synchronous and queue asynchronous work elsewhere");

    public static readonly DiagnosticDescriptor ThrowInHandler = Rule("PG1004", "ProbeGen.HotPath", DiagnosticSeverity.Warning,
        "An exception thrown out of a probe handler",
        "This throw leaves the probe handler: each one counts as a fault, and after MaxFaults the consumer is detached; catch it inside the handler, or record the condition instead");

    public static readonly DiagnosticDescriptor PerHitAllocation = Rule("PG1005", "ProbeGen.HotPath", DiagnosticSeverity.Info,
        "An allocation on every hit",
        "{0} allocates on every probe hit; {1}");

    public static readonly DiagnosticDescriptor UndisposedAttachment = Rule("PG1006", "ProbeGen.Usage", DiagnosticSeverity.Warning,
        "A probe attachment that is never disposed",
        "The {0} returned by '{1}' is discarded or never used, so its handler runs until the process ends; keep it and dispose it (a 'using' declaration does)");

    public static readonly DiagnosticDescriptor UndisposedReadGuard = Rule("PG1007", "ProbeGen.Usage", DiagnosticSeverity.Warning,
        "An SRCU read guard that is not disposed on every path",
        "The read-side section entered by '{0}' is not ended on every path; every grace period will wait for it forever. Write 'using var guard = {0};' or 'using ({0}) {{ ... }}'");

    public static readonly DiagnosticDescriptor NotIntercepted = Rule("PG1008", "ProbeGen.Usage", DiagnosticSeverity.Warning,
        "A call of a method probe that cannot be intercepted",
        "No probe fires for this use of the method probe '{0}': {1}; {2}");
}
