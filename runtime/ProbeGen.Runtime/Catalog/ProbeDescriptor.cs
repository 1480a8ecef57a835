using System;
using System.Collections.Generic;
using System.Threading;

namespace ProbeGen;

/// <summary>Whether a probe is declared by a partial method (static) or wraps a method's calls (method).</summary>
public enum ProbeKind
{
    /// <summary>A USDT-style probe: a bodiless partial method that fires one <see cref="ProbePoint.Fire"/> point.</summary>
    Static,

    /// <summary>A method probe: fires <see cref="ProbePoint.Entry"/> and <see cref="ProbePoint.Return"/> around every intercepted call.</summary>
    Method,
}

/// <summary>Where in a probe a hit happened.</summary>
public enum ProbePoint
{
    /// <summary>A static probe fired.</summary>
    Fire,

    /// <summary>A probed method was entered.</summary>
    Entry,

    /// <summary>A probed method returned, or threw, or its awaitable completed.</summary>
    Return,
}

/// <summary>Which points a consumer wants; combine with <c>|</c>.</summary>
[Flags]
public enum ProbePoints
{
    /// <summary>Static probe hits.</summary>
    Fire = 1,

    /// <summary>Method entries.</summary>
    Entry = 2,

    /// <summary>Method returns.</summary>
    Return = 4,

    /// <summary>Every point.</summary>
    All = Fire | Entry | Return,
}

/// <summary>A probe parameter, as the catalog describes it.</summary>
/// <param name="Name">The parameter name, as declared.</param>
/// <param name="Type">The parameter type, as C# spells it (for example <c>int</c> or <c>System.Decimal?</c>).</param>
public sealed record ProbeParameter(string Name, string Type)
{
    /// <summary>What the declaration's <see cref="ProbeRedactAttribute"/> says; <see cref="ProbeRedact.ByName"/> without one.</summary>
    public ProbeRedact Redact { get; init; }

    /// <summary>True when the value never leaves the process (see <see cref="ProbeRedaction"/>).</summary>
    public bool IsRedacted => ProbeRedaction.IsRedacted(this);
}

/// <summary>
/// Everything the catalog knows about one probe: identity, shape and source location. Immutable.
/// </summary>
public sealed class ProbeDescriptor
{
    private readonly ProbeParameter[] _parameters;

    /// <summary>Creates a descriptor. Generated code calls this; hand-written sites may too.</summary>
    /// <param name="provider">The provider, the part of the id before the colon.</param>
    /// <param name="name">The name, the part after it.</param>
    /// <param name="kind">Static or method probe.</param>
    /// <param name="parameters">The parameters, in declaration order.</param>
    /// <param name="returnType">The return type as C# spells it, or null for a static probe or a <c>void</c> method.</param>
    /// <param name="file">The source file of the declaration, if known.</param>
    /// <param name="line">The 1-based source line of the declaration, or 0.</param>
    public ProbeDescriptor(string provider, string name, ProbeKind kind, ProbeParameter[] parameters, string? returnType = null, string? file = null, int line = 0)
    {
        ProbeIds.Validate(provider, nameof(provider));
        ProbeIds.Validate(name, nameof(name));
        ArgumentNullException.ThrowIfNull(parameters);
        Provider = provider;
        Name = name;
        Id = provider + ":" + name;
        Kind = kind;
        _parameters = (ProbeParameter[])parameters.Clone();
        ReturnType = returnType;
        File = file;
        Line = line;
    }

    /// <summary>The probe id, <c>provider:name</c>.</summary>
    public string Id { get; }

    /// <summary>The provider.</summary>
    public string Provider { get; }

    /// <summary>The name within the provider.</summary>
    public string Name { get; }

    /// <summary>Static or method probe.</summary>
    public ProbeKind Kind { get; }

    /// <summary>The parameters, in declaration order.</summary>
    public IReadOnlyList<ProbeParameter> Parameters => _parameters;

    /// <summary>The return type, or null when there is none.</summary>
    public string? ReturnType { get; }

    /// <summary>The declaring source file, if known.</summary>
    public string? File { get; }

    /// <summary>The declaring source line, or 0.</summary>
    public int Line { get; }

    /// <summary>The assembly that registered the probe; set by <see cref="ProbeCatalog.Register"/>.</summary>
    public string? Assembly { get; internal set; }

    /// <summary>
    /// For a method probe, the probed method's documentation-comment id (<c>M:Ns.Type.Method(System.Int32)</c>).
    /// Interceptors compiled into other assemblies find the one site of the probe by it, through
    /// <see cref="MethodProbeSite{TArgs, TResult}.Resolve"/>.
    /// </summary>
    public string? MethodKey { get; init; }

    /// <summary>
    /// For a method probe, the type that declares the probed method (a generic type's definition).
    /// Interface and virtual call sites use it to tell whether a receiver's call reaches the probed method.
    /// </summary>
    /// <remarks>
    /// Not annotated for the trimmer: that would keep, and warn about, every method of the type. The
    /// methods a dispatch test looks for are called, so they are kept.
    /// </remarks>
    public Type? DeclaringType { get; init; }

    /// <summary>For a method probe, the metadata name of the probed method (an explicit implementation's includes its interface).</summary>
    public string? MethodName { get; init; }

    /// <summary>True when the return value never leaves the process: the method's return carries <c>[return: ProbeRedact]</c>.</summary>
    public bool ReturnRedacted { get; init; }

    private RedactionMask? _redaction;

    /// <summary>
    /// True when argument <paramref name="index"/> must not leave the process. Cached per probe and
    /// recomputed only after the owner changes <see cref="ProbeRedaction"/>, so a hit pays an array read.
    /// </summary>
    public bool IsArgumentRedacted(int index)
    {
        RedactionMask? mask = Volatile.Read(ref _redaction);
        int version = ProbeRedaction.Version;
        if (mask is null || mask.Version != version)
        {
            var redacted = new bool[_parameters.Length];
            for (int i = 0; i < redacted.Length; i++)
                redacted[i] = ProbeRedaction.IsRedacted(_parameters[i]);
            Volatile.Write(ref _redaction, mask = new RedactionMask(version, redacted));
        }
        return (uint)index < (uint)mask.Redacted.Length && mask.Redacted[index];
    }

    private sealed record RedactionMask(int Version, bool[] Redacted);

    /// <summary>
    /// For a method probe, the call sites that interceptors reach, per calling assembly, as loaded
    /// so far: an assembly registers its call sites when its module initializer runs. Empty when no
    /// loaded code can fire the probe.
    /// </summary>
    public IReadOnlyList<ProbeCallSites> CallSites => ProbeCatalog.CallSitesOf(this);

    /// <summary>The index of the parameter called <paramref name="name"/>, or -1.</summary>
    public int IndexOfParameter(string name)
    {
        for (int i = 0; i < _parameters.Length; i++)
            if (string.Equals(_parameters[i].Name, name, StringComparison.Ordinal))
                return i;
        return -1;
    }

    /// <inheritdoc />
    public override string ToString() => Id;
}

/// <summary>Validation of probe ids.</summary>
internal static class ProbeIds
{
    public static void Validate(string part, string paramName)
    {
        ArgumentException.ThrowIfNullOrEmpty(part, paramName);
        foreach (char c in part)
        {
            if (c == ':' || c == '*' || c == '?' || char.IsWhiteSpace(c) || char.IsControl(c))
                throw new ArgumentException($"'{part}' is not a valid probe {paramName}: it may not contain ':', '*', '?', whitespace or control characters.", paramName);
        }
    }
}

/// <summary>How many call sites of a method probe one assembly's interceptors reach.</summary>
/// <param name="Assembly">The calling assembly's simple name.</param>
/// <param name="Count">Its intercepted call sites of the probe.</param>
public sealed record ProbeCallSites(string Assembly, int Count);
