using System.Collections.Concurrent;
using System.Collections.Generic;

namespace ProbeGen.Control;

/// <summary>The sessions that <c>probegen</c> has opened in this process, by id.</summary>
internal static class ControlPlane
{
    /// <summary>Live sessions. Added on a session's Enable; removed when it ends.</summary>
    private static readonly ConcurrentDictionary<string, ControlSession> s_sessions = new();

    static ControlPlane()
    {
        // Before EventSources are disposed at exit (the default context unloads first), and before
        // an unhandled exception ends the process: the last hits are often the ones that matter.
        System.Runtime.Loader.AssemblyLoadContext.Default.Unloading += _ => FlushAll();

        System.AppDomain.CurrentDomain.UnhandledException += (_, _) => FlushAll();
    }

    /// <summary>Writes out every session's batched hits, waiting for appends in progress.</summary>
    public static void FlushAll()
    {
        foreach (ControlSession session in s_sessions.Values)
            session.Flush(answer: false);
    }

    /// <summary>Stops every session's batching for good and writes out what the batches hold: the app is exiting.</summary>
    public static void StopBatching()
    {
        foreach (ControlSession session in s_sessions.Values)
            session.StopBatching();
    }

    /// <summary>True when the process was started with PROBEGEN_CONTROL=0.</summary>
    public static bool RemoteEnablingRefused =>
        System.Environment.GetEnvironmentVariable(ControlProtocol.ControlVariable) == "0";

    /// <summary>The number of live sessions, for tests and diagnostics.</summary>
    public static int SessionCount => s_sessions.Count;

    /// <summary>
    /// Handles a session's Enable. Runs on the thread that delivers the callback: the diagnostics
    /// server's for a session opened while the app runs, the app's own when the control source is
    /// created with sessions already open. Never throws; waits only for the probe writer lock,
    /// which no one holds while waiting for anything else.
    /// </summary>
    public static void OnEnable(IDictionary<string, string?> arguments)
    {
        if (!arguments.TryGetValue(ControlProtocol.Keys.Session, out string? id) || !ControlProtocol.IsValidSessionId(id))
            return;
        // A flush names a live session instead of opening one: its CLI is about to stop it.
        if (arguments.TryGetValue(ControlProtocol.Keys.Command, out string? command) && command == "flush")
        {
            if (s_sessions.TryGetValue(id!, out ControlSession? live))
                live.Flush(answer: true);
            return;
        }
        var session = new ControlSession(id!, arguments);
        if (!s_sessions.TryAdd(id!, session))
            return;
        // Synchronously, on the callback's thread. In launch mode that thread is the app's own,
        // inside the first module initializer that registers probes: the session must be
        // attached before that initializer returns, or the app's first hits run past it.
        session.Start();
    }

    public static void Forget(ControlSession session) =>
        s_sessions.TryRemove(new KeyValuePair<string, ControlSession>(session.Id, session));
}
