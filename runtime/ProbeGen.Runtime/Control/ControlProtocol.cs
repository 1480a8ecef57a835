using System;
using System.Text;

namespace ProbeGen.Control;

/// <summary>
/// The wire contract between <c>probegen</c> and a target, in one place for both sides.
/// </summary>
/// <remarks>
/// <para>A session enables two providers: <see cref="ProviderName"/> with its command as provider
/// arguments, and <see cref="SessionProviderName"/> for its replies. Argument values that may hold
/// any text (patterns, the where expression) travel base64url-encoded, because EventPipe joins the
/// arguments as <c>key=value;key=value</c>.</para>
/// <list type="bullet">
/// <item><c>session</c>: the session id, [A-Za-z0-9]{1,32}.</item>
/// <item><c>command</c>: <c>list</c>, <c>trace</c>, <c>stats</c> or <c>metrics</c>.</item>
/// <item><c>patterns</c>: base64url of the patterns, one per line.</item>
/// <item><c>where</c>: base64url of the filter expression (optional).</item>
/// <item><c>rate</c>: the most hits per second per probe to send; 0 for no limit.</item>
/// <item><c>interval</c>: milliseconds between stats snapshots.</item>
/// </list>
/// <para>Every value is bounded: see <see cref="MaxArgumentLength"/>, <see cref="MaxPatterns"/>,
/// <see cref="MaxSessions"/>, <see cref="ProbePattern.MaxLength"/> and <see cref="WhereFilter.MaxLength"/>.</para>
/// </remarks>
public static class ControlProtocol
{
    /// <summary>The provider argument keys a session sends.</summary>
    public static class Keys
    {
        /// <summary>The session id.</summary>
        public const string Session = "session";

        /// <summary>The command: <c>list</c>, <c>trace</c>, <c>stats</c> or <c>metrics</c>.</summary>
        public const string Command = "command";

        /// <summary>Base64url of the patterns, one per line.</summary>
        public const string Patterns = "patterns";

        /// <summary>Base64url of the <c>--where</c> expression.</summary>
        public const string Where = "where";

        /// <summary>The most hits per second per probe to send; 0 for no limit.</summary>
        public const string Rate = "rate";

        /// <summary>Milliseconds between stats snapshots.</summary>
        public const string Interval = "interval";

        /// <summary>For <c>metrics</c>: argument names to add as tags, comma-separated.</summary>
        public const string Tags = "tags";

        /// <summary>
        /// <c>0</c> to have a trace session write one <see cref="HitEvent"/> per hit instead of
        /// batches: for a saved trace, whose viewers show each event with the stack it was written on.
        /// </summary>
        public const string Batch = "batch";
    }

    /// <summary>The codes an Error reply carries.</summary>
    public static class Errors
    {
        /// <summary>The process refuses remote enabling (<see cref="ControlVariable"/>=0).</summary>
        public const string Refused = "refused";

        /// <summary>The command is not one the target knows.</summary>
        public const string BadCommand = "bad-command";

        /// <summary>A pattern is invalid, or there are too many or too long.</summary>
        public const string BadPattern = "bad-pattern";

        /// <summary>The <c>--where</c> expression is invalid or fits no matching probe.</summary>
        public const string BadWhere = "bad-where";

        /// <summary>The target already serves <see cref="MaxSessions"/> sessions.</summary>
        public const string Busy = "busy";

        /// <summary>Something failed in the target; the message says what.</summary>
        public const string Internal = "internal";
    }

    /// <summary>The field names of a Stats reply's JSON: <c>{"elapsed_ms":n,"probes":[{"probe":id,"count":n,"errors":n,"latency_ns":[[bucket,count],...]}]}</c>.</summary>
    public static class StatsFields
    {
        /// <summary>Milliseconds since the previous snapshot.</summary>
        public const string ElapsedMs = "elapsed_ms";

        /// <summary>The array of per-probe rows.</summary>
        public const string Probes = "probes";

        /// <summary>A row's probe id.</summary>
        public const string Probe = "probe";

        /// <summary>A row's calls since the session started: a method probe's completed calls, a static probe's fires.</summary>
        public const string Count = "count";

        /// <summary>A row's calls that ended with an exception (method probes).</summary>
        public const string Errors = "errors";

        /// <summary>A row's log2 latency buckets, <c>[bucket, count]</c> pairs for non-empty buckets.</summary>
        public const string LatencyNs = "latency_ns";
    }

    /// <summary>The longest argument value a target reads, in characters; longer ones are refused unread.</summary>
    public const int MaxArgumentLength = 48 * 1024;

    /// <summary>The most distinct patterns one session may enable.</summary>
    public const int MaxPatterns = 64;

    /// <summary>The most sessions a target serves at once; each costs an EventPipe session and its buffer.</summary>
    public const int MaxSessions = 8;

    /// <summary>The control provider.</summary>
    public const string ProviderName = "ProbeGen";

    /// <summary>
    /// Event ids of the session provider. A trace session announces each probe with a
    /// <see cref="BindEvent"/> before any <see cref="HitEvent"/> or <see cref="HitBatchEvent"/> of it
    /// (see <see cref="HitLayout"/>), and answers a <c>flush</c> with <see cref="FlushedEvent"/>.
    /// </summary>
    public const int ReadyEvent = 1, ErrorEvent = 2, ProbeEvent = 3, ListEndEvent = 4, DroppedEvent = 6, StatsEvent = 7, HeartbeatEvent = 8, BindEvent = 9, HitEvent = 10,
        HitBatchEvent = 11, FlushedEvent = 12;

    /// <summary>
    /// The hit event of protocol version 1, whose arguments were JSON text built in the target.
    /// No longer written; a <c>probegen</c> that receives it is talking to an older target.
    /// </summary>
    public const int LegacyHitEvent = 5;

    /// <summary>
    /// The protocol version: 2 since hits carry <see cref="HitLayout"/> payloads instead of JSON text;
    /// 3 since a trace session sends them in batches (<see cref="HitBatchEvent"/>) and answers <c>flush</c>.
    /// </summary>
    public const int Version = 3;

    /// <summary>
    /// How often a session's source writes a heartbeat. TraceEvent's EventPipe reader holds events
    /// back until later ones arrive (it merges threads by timestamp), so a quiet session would
    /// otherwise sit on its last replies and hits; the heartbeat bounds that delay.
    /// </summary>
    public const int HeartbeatMilliseconds = 100;

    /// <summary>The environment variable that, set to 0, makes a process refuse remote enabling.</summary>
    public const string ControlVariable = "PROBEGEN_CONTROL";

    /// <summary>The reply provider of one session.</summary>
    public static string SessionProviderName(string sessionId) => ProviderName + "-" + sessionId;

    /// <summary>True for a session id that is safe in a provider name.</summary>
    public static bool IsValidSessionId(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 32)
            return false;
        foreach (char c in id)
            if (!char.IsAsciiLetterOrDigit(c))
                return false;
        return true;
    }

    /// <summary>
    /// A method probe's intercepted call sites, as the list reply's <c>CallSites</c> field carries
    /// them: <c>assembly count</c> pairs, one per line; empty when no loaded code can fire it.
    /// </summary>
    public static string EncodeCallSites(System.Collections.Generic.IReadOnlyList<ProbeCallSites> callSites)
    {
        var text = new StringBuilder();
        foreach (ProbeCallSites c in callSites)
            text.Append(text.Length == 0 ? "" : "\n").Append(c.Assembly).Append(' ').Append(c.Count);
        return text.ToString();
    }

    /// <summary>Decodes <see cref="EncodeCallSites"/>; pairs that do not parse are skipped.</summary>
    public static System.Collections.Generic.List<ProbeCallSites> DecodeCallSites(string? text)
    {
        var result = new System.Collections.Generic.List<ProbeCallSites>();
        foreach (string line in (text ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int space = line.LastIndexOf(' ');
            if (space > 0 && int.TryParse(line.AsSpan(space + 1), out int count) && count >= 0)
                result.Add(new ProbeCallSites(line[..space], count));
        }
        return result;
    }

    /// <summary>Encodes a value that may hold any text.</summary>
    public static string Encode(string text) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(text)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Decodes <see cref="Encode"/>; null when the value is not valid base64url.</summary>
    public static string? Decode(string? encoded)
    {
        if (encoded is null)
            return null;
        string base64 = encoded.Replace('-', '+').Replace('_', '/');
        base64 += new string('=', (4 - base64.Length % 4) % 4);
        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(base64));
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
