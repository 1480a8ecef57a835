using System;
using System.Collections.Generic;
using static ProbeGen.Uprobes.TraceeMemory;

namespace ProbeGen.Uprobes;

/// <summary>
/// One thread's hijacked returns, like the kernel's <c>return_instances</c>: each return probe hit
/// swaps the return address on the stack for the trampoline and remembers the real one here, so
/// that the trampoline's trap can report the return and resume where the function really returns.
/// Used only on the tracer thread.
/// </summary>
internal sealed class ReturnStack
{
    /// <summary>Nested return probes per thread, as the kernel's uprobes limit them (MAX_URETPROBE_DEPTH); deeper returns are dropped.</summary>
    public const int MaxDepth = 64;

    /// <summary>
    /// A hijacked return: where the function really returns to, the stack slot that held it, and
    /// the return probe, with a reference of its own (taken at the entry trap, dropped when the
    /// return is taken or abandoned) so that a detach meanwhile cannot reclaim it.
    /// </summary>
    private readonly record struct PendingReturn(ulong ReturnAddress, ulong StackSlot, BreakpointProbe Probe);

    private readonly List<PendingReturn> _pending = [];

    /// <summary>
    /// At a probed function's entry, [rsp] is the return address: swaps in the trampoline. False
    /// when the return is dropped because the thread nests more than <see cref="MaxDepth"/> of them.
    /// </summary>
    public bool Hijack(int tid, ulong rsp, BreakpointProbe probe, ulong trampoline)
    {
        ulong returnAddress = PeekWord(tid, rsp);
        // A longjmp or an exception may have skipped returns: drop the frames the stack has left.
        // An entry for this very slot is live only if the slot still holds the trampoline (a tail
        // call); if a call has written a real return address there, that frame is gone too.
        while (_pending.Count > 0 && (_pending[^1].StackSlot < rsp || (_pending[^1].StackSlot == rsp && returnAddress != trampoline)))
            Pop().Probe.Release();
        if (_pending.Count >= MaxDepth)
            return false;
        // Already the trampoline: a tail call from another probed function. That one's entry holds
        // the real address, and both report when the shared return runs.
        if (!probe.TryAddRef())
            return true;  // cannot fail: the trap holds a reference
        if (returnAddress != trampoline)
            PokeWord(tid, rsp, trampoline);
        _pending.Add(new PendingReturn(returnAddress, rsp, probe));
        return true;
    }

    /// <summary>
    /// A thread returned to the trampoline (the ret popped the slot, so the slot is rsp - 8): passes
    /// each probed function that returned through that slot to <paramref name="onReturn"/> (null:
    /// report nothing), and finds where to resume. False when no real return address was found.
    /// </summary>
    public bool Take(ulong rsp, ulong trampoline, Action<BreakpointProbe>? onReturn, out ulong returnAddress)
    {
        returnAddress = 0;
        ulong slot = rsp - 8;
        while (_pending.Count > 0 && _pending[^1].StackSlot < slot)
            Pop().Probe.Release();  // skipped by a longjmp
        while (_pending.Count > 0 && _pending[^1].StackSlot == slot)
        {
            PendingReturn top = Pop();
            try
            {
                onReturn?.Invoke(top.Probe);
            }
            finally
            {
                top.Probe.Release();
            }
            if (top.ReturnAddress != trampoline)
                returnAddress = top.ReturnAddress;
        }
        return returnAddress != 0;
    }

    /// <summary>
    /// Puts the real return addresses back in the stack slots at or above <paramref name="lowestSlot"/>
    /// that still hold the trampoline (after a longjmp a stale slot may hold a local variable by
    /// now), writing through <paramref name="tid"/>. The returns stay on this stack.
    /// </summary>
    public void Restore(int tid, ulong trampoline, ulong lowestSlot = 0)
    {
        foreach (PendingReturn p in _pending)
            if (p.ReturnAddress != trampoline && p.StackSlot >= lowestSlot && PeekWord(tid, p.StackSlot) == trampoline)
                PokeWord(tid, p.StackSlot, p.ReturnAddress);
    }

    /// <summary>Drops the references of returns that will never be taken (the thread or the image is gone, or the session detached).</summary>
    public void Abandon()
    {
        foreach (PendingReturn p in _pending)
            p.Probe.Release();
        _pending.Clear();
    }

    private PendingReturn Pop()
    {
        PendingReturn top = _pending[^1];
        _pending.RemoveAt(_pending.Count - 1);
        return top;
    }
}
