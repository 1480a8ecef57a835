using System;

namespace ProbeGen;

/// <summary>
/// Marks a parameter that takes probe handler code, or a method whose overrides are handler code.
/// The ProbeGen analyzers treat such code as running on a probe's hot path: on the probed thread,
/// inside an SRCU read-side section, on every hit.
/// </summary>
[AttributeUsage(AttributeTargets.Parameter | AttributeTargets.Method, AllowMultiple = false, Inherited = true)]
public sealed class ProbeHandlerAttribute : Attribute
{
}
