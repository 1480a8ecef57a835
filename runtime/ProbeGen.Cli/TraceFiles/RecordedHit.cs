namespace ProbeGen.Cli.TraceFiles;

/// <summary>A hit as the viewers' formats need it: when, where, what, and for a return how long.</summary>
/// <param name="TimestampNs">Unix nanoseconds.</param>
/// <param name="ThreadId">The managed thread the hit ran on.</param>
/// <param name="Probe">The probe id.</param>
/// <param name="Point"><c>fire</c>, <c>entry</c> or <c>return</c>.</param>
/// <param name="ElapsedNs">The call's duration, for a return.</param>
/// <param name="Args">The arguments as JSON text, redacted in the target.</param>
/// <param name="Ret">The return value as JSON text, empty when none.</param>
/// <param name="Exception">What the call threw, if anything.</param>
internal sealed record RecordedHit(long TimestampNs, int ThreadId, string Probe, string Point, long ElapsedNs, string Args, string Ret, string? Exception);
