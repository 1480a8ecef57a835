using System;
using System.Collections.Frozen;
using System.Collections.Generic;
using System.Threading;

namespace ProbeGen;

/// <summary>What a <see cref="ProbeRedactAttribute"/> on a parameter asks for.</summary>
public enum ProbeRedact
{
    /// <summary>No attribute: redacted when the name is sensitive (see <see cref="ProbeRedaction"/>).</summary>
    ByName,

    /// <summary>Always redacted, whatever the name.</summary>
    Always,

    /// <summary>Never redacted, whatever the name: the app's owner says this value may leave the process.</summary>
    Never,
}

/// <summary>
/// Keeps a parameter's value (or with <c>[return: ProbeRedact]</c>, a method's return value) in the
/// process: <c>probegen trace</c>, stats and every exporter show <c>[redacted]</c>, and a remote
/// <c>--where</c> cannot compare it. <c>[ProbeRedact(false)]</c> lets a value whose name is on the
/// sensitive list leave the process.
/// </summary>
[AttributeUsage(AttributeTargets.Parameter | AttributeTargets.ReturnValue, AllowMultiple = false, Inherited = false)]
public sealed class ProbeRedactAttribute : Attribute
{
    /// <summary>Redacts the value.</summary>
    public ProbeRedactAttribute()
        : this(true)
    {
    }

    /// <summary>Redacts the value, or with false, allows a value whose name would be redacted.</summary>
    /// <param name="redact">False to let the value leave the process.</param>
    public ProbeRedactAttribute(bool redact) => Redact = redact;

    /// <summary>Whether the value is redacted.</summary>
    public bool Redact { get; }
}

/// <summary>
/// Which argument values never leave the process. Redaction is decided in the process, by the
/// app's code and attributes, never by what a remote caller sends: a value is redacted when its
/// parameter has <see cref="ProbeRedactAttribute"/>, or has none and its name is sensitive.
/// </summary>
/// <remarks>
/// A name is sensitive when, lowercased with <c>_</c> and <c>-</c> removed, it contains one of
/// <see cref="BuiltInNames"/> (so <c>refresh_token</c>, <c>clientSecret</c> and <c>cardNumber</c>
/// are), or equals one of the short names (<c>pin</c>, <c>pan</c>, <c>ssn</c>, <c>cvv</c>,
/// <c>cvc</c>, <c>pwd</c>), which would match too much as parts of a name. The app's owner
/// extends or relaxes the list at startup with <see cref="AddSensitiveName"/> and
/// <see cref="AllowName"/>; a session that binds later sees the change.
/// </remarks>
public static class ProbeRedaction
{
    /// <summary>What a redacted value is replaced with wherever it would leave the process.</summary>
    public const string Placeholder = "[redacted]";

    /// <summary>Name parts that make a parameter sensitive by default.</summary>
    public static readonly IReadOnlyList<string> BuiltInNames =
    [
        "password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey", "privatekey",
        "authorization", "credential", "cookie", "sessionid", "cardnumber", "creditcard", "cardno",
        "cvv", "cvc", "iban", "ssn", "connectionstring", "signature",
    ];

    /// <summary>Whole names that are sensitive on their own, but too short to look for inside other names.</summary>
    public static readonly IReadOnlyList<string> BuiltInExactNames = ["pin", "pan", "pwd", "otp"];

    private static readonly Lock s_lock = new();
    private static FrozenSet<string> s_extraNames = FrozenSet<string>.Empty;
    private static FrozenSet<string> s_allowedNames = FrozenSet<string>.Empty;
    private static int s_version;

    /// <summary>Changes whenever the owner changes the list, so cached answers can be refreshed.</summary>
    internal static int Version => Volatile.Read(ref s_version);

    /// <summary>Makes every parameter whose name contains <paramref name="namePart"/> sensitive, in every probe of the process.</summary>
    /// <param name="namePart">A name or part of one; compared lowercased, without <c>_</c> and <c>-</c>.</param>
    public static void AddSensitiveName(string namePart) => Update(ref s_extraNames, namePart);

    /// <summary>Lets parameters named <paramref name="name"/> leave the process even though the name is sensitive. An explicit <c>[ProbeRedact]</c> still wins.</summary>
    /// <param name="name">A whole parameter name; compared lowercased, without <c>_</c> and <c>-</c>.</param>
    public static void AllowName(string name) => Update(ref s_allowedNames, name);

    /// <summary>True when the parameter's value must not leave the process.</summary>
    public static bool IsRedacted(ProbeParameter parameter) => parameter.Redact switch
    {
        ProbeRedact.Always => true,
        ProbeRedact.Never => false,
        _ => IsSensitiveName(parameter.Name),
    };

    /// <summary>True when a parameter with this name and no attribute is redacted.</summary>
    public static bool IsSensitiveName(string name)
    {
        string key = Normalize(name);
        if (Volatile.Read(ref s_allowedNames).Contains(key))
            return false;
        foreach (string exact in BuiltInExactNames)
            if (key == exact)
                return true;
        foreach (string part in BuiltInNames)
            if (key.Contains(part, StringComparison.Ordinal))
                return true;
        foreach (string part in Volatile.Read(ref s_extraNames))
            if (key.Contains(part, StringComparison.Ordinal))
                return true;
        return false;
    }

    private static void Update(ref FrozenSet<string> set, string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        lock (s_lock)
        {
            var names = new HashSet<string>(set, StringComparer.Ordinal) { Normalize(name) };
            Volatile.Write(ref set, names.ToFrozenSet(StringComparer.Ordinal));
            Interlocked.Increment(ref s_version);
        }
    }

    private static string Normalize(string name) => name.Replace("_", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal).ToLowerInvariant();
}
