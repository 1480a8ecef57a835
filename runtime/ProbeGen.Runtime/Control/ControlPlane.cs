using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Threading;

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

    /// <summary>Handles a session's Enable. Runs on an EventPipe callback thread: never throws, never blocks.</summary>
    public static void OnEnable(IDictionary<string, string?> arguments)
    {
        if (!arguments.TryGetValue("session", out string? id) || !ControlProtocol.IsValidSessionId(id))
            return;
        var session = new ControlSession(id!, arguments);
        if (!s_sessions.TryAdd(id!, session))
            return;
        // The command runs on the thread pool: creating the reply source and attaching take locks
        // that an EventPipe callback thread should not wait on.
        ThreadPool.UnsafeQueueUserWorkItem(static s => s.Start(), session, preferLocal: false);
    }

    public static void Forget(ControlSession session) =>
        s_sessions.TryRemove(new KeyValuePair<string, ControlSession>(session.Id, session));
}
