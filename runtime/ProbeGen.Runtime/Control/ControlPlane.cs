using System.Collections.Concurrent;
using System.Collections.Generic;

namespace ProbeGen.Control;

/// <summary>The sessions that <c>probegen</c> has opened in this process, by id.</summary>
internal static class ControlPlane
{
    /// <summary>Live sessions. Added on a session's Enable; removed when it ends.</summary>
    private static readonly ConcurrentDictionary<string, ControlSession> s_sessions = new();

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
