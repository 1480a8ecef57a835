namespace ProbeGen.Control;

/// <summary>The fixed fields of a hit event (see <see cref="HitLayout"/>).</summary>
/// <param name="Probe">The session's index of the probe, from its Bind event.</param>
/// <param name="Point">Fire, entry or return.</param>
/// <param name="ThreadId">The managed thread the hit ran on.</param>
/// <param name="Timestamp">Unix nanoseconds.</param>
/// <param name="ElapsedNs">The call's duration, for a return; else 0.</param>
public readonly record struct HitHeader(int Probe, ProbePoint Point, int ThreadId, long Timestamp, long ElapsedNs);
