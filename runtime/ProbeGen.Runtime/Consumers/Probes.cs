using System;
using System.Threading;
using ProbeGen.Concurrency;

namespace ProbeGen;

/// <summary>
/// Attaches in-process consumers to probes: by pattern with an untyped handler or a
/// <see cref="ProbeConsumer"/>, or to one site with a typed handler.
/// </summary>
public static class Probes
{
    /// <summary>
    /// Serializes every change to bindings, pattern attachments and the catalog. Handlers take it
    /// (a deferred detach, an attach, the fault that detaches), so it is never held while waiting
    /// for a grace period: <see cref="Domain"/> refuses such a wait, and
    /// <see cref="ProbeAttachment.Dispose"/> refuses to start one.
    /// </summary>
    /// <remarks>Declared before <see cref="Domain"/>, whose initializer reads it.</remarks>
    internal static readonly Lock WriterLock = new();

    /// <summary>
    /// The SRCU domain that covers every handler call and every lockless read of the probe catalog.
    /// A binding removed from a site, or a site removed from the catalog, is unreachable for hits
    /// once a grace period of this domain has passed. Its <c>Synchronize</c> and <c>Barrier</c>
    /// throw <see cref="InvalidOperationException"/> inside <see cref="ProbeConsumer.OnAttach"/>.
    /// </summary>
    public static SrcuDomain Domain { get; } = new("ProbeGen probe handlers", WriterLock);

    /// <summary>Live pattern attachments, bound to probes registered later. Changed and read under <see cref="WriterLock"/>.</summary>
    private static ProbeAttachment[] s_patternAttachments = [];

    /// <summary>Attaches <paramref name="handler"/> to every probe matching <paramref name="pattern"/>, now and registered later.</summary>
    /// <param name="pattern">A <see cref="ProbePattern"/> such as <c>orders:*</c> or <c>*:charge</c>.</param>
    /// <param name="handler">Called on each hit; see the handler contract on <see cref="ProbeConsumer"/>.</param>
    /// <param name="options">Points and fault tolerance; <see cref="ProbeAttachOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">The pattern is not valid.</exception>
    public static ProbeAttachment Attach(string pattern, [ProbeHandler] ProbeHandler handler, ProbeAttachOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return Attach(pattern, new DelegateConsumer(handler), options);
    }

    /// <summary>Attaches <paramref name="consumer"/> to every probe matching <paramref name="pattern"/>, now and registered later.</summary>
    /// <param name="pattern">A <see cref="ProbePattern"/> such as <c>orders:*</c> or <c>*:charge</c>.</param>
    /// <param name="consumer">The consumer.</param>
    /// <param name="options">Points and fault tolerance; <see cref="ProbeAttachOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">The pattern is not valid.</exception>
    public static ProbeAttachment Attach(string pattern, ProbeConsumer consumer, ProbeAttachOptions? options = null) =>
        Attach(ProbePattern.Parse(pattern), consumer, options);

    /// <summary>
    /// Attaches <paramref name="consumer"/> to every probe matching <paramref name="parsed"/>, now and
    /// registered later. With a pattern from <see cref="ProbePattern.AnyOf"/>, each probe is bound
    /// once however many of its alternatives match it.
    /// </summary>
    /// <param name="parsed">The pattern.</param>
    /// <param name="consumer">The consumer.</param>
    /// <param name="options">Points and fault tolerance; <see cref="ProbeAttachOptions.Default"/> when null.</param>
    public static ProbeAttachment Attach(ProbePattern parsed, ProbeConsumer consumer, ProbeAttachOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(parsed);
        ArgumentNullException.ThrowIfNull(consumer);
        var attachment = new ProbeAttachment(parsed, consumer, options ?? ProbeAttachOptions.Default, parsed.Text);
        lock (WriterLock)
        {
            try
            {
                foreach (ProbeSite site in ProbeCatalog.MatchUnderLock(parsed))
                    BindUnderLock(attachment, site);
            }
            catch
            {
                // OnAttach threw. The caller never gets the attachment, so nobody could detach the
                // probes already bound: detach them here, deferred (we hold the writer lock).
                attachment.DetachDeferredBecause(ProbeDetachReason.Faulted);
                throw;
            }
            s_patternAttachments = [.. s_patternAttachments, attachment];
        }
        return attachment;
    }

    /// <summary>Attaches a typed handler to one static probe. Its hits reach the handler without boxing or allocation.</summary>
    /// <param name="site">The probe's site.</param>
    /// <param name="handler">Called on each hit; see the handler contract on <see cref="ProbeConsumer"/>.</param>
    /// <param name="options">Fault tolerance; <see cref="ProbeAttachOptions.Default"/> when null.</param>
    public static ProbeAttachment Attach<TArgs>(StaticProbeSite<TArgs> site, [ProbeHandler] ProbeAction<TArgs> handler, ProbeAttachOptions? options = null)
        where TArgs : struct, IProbeArgs
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(handler);
        var attachment = new ProbeAttachment(null, null, options ?? ProbeAttachOptions.Default, site.Descriptor.Id);
        lock (WriterLock)
            attachment.AddBindingUnderLock(site.BindUnderLock(attachment, handler));
        return attachment;
    }

    /// <summary>Attaches typed handlers to one method probe.</summary>
    /// <param name="site">The probe's site.</param>
    /// <param name="onEntry">Called on each entry, or null.</param>
    /// <param name="onReturn">Called on each return, or null.</param>
    /// <param name="options">Fault tolerance; <see cref="ProbeAttachOptions.Default"/> when null.</param>
    public static ProbeAttachment Attach<TArgs, TResult>(MethodProbeSite<TArgs, TResult> site, [ProbeHandler] ProbeAction<TArgs>? onEntry,
        [ProbeHandler] ProbeReturnAction<TArgs, TResult>? onReturn, ProbeAttachOptions? options = null)
        where TArgs : struct, IProbeArgs
    {
        ArgumentNullException.ThrowIfNull(site);
        if (onEntry is null && onReturn is null)
            throw new ArgumentException("Give at least one of onEntry and onReturn.", nameof(onEntry));
        var attachment = new ProbeAttachment(null, null, options ?? ProbeAttachOptions.Default, site.Descriptor.Id);
        lock (WriterLock)
            attachment.AddBindingUnderLock(site.BindUnderLock(attachment, onEntry, onReturn));
        return attachment;
    }

    /// <summary>Counts the hits of every probe matching <paramref name="pattern"/>.</summary>
    public static ProbeCounter Count(string pattern, ProbeAttachOptions? options = null)
    {
        var counter = new ProbeCounter();
        counter.Attachment = Attach(pattern, counter, options);
        return counter;
    }

    /// <summary>
    /// Builds a log2 histogram, per probe, of the latency of matching method probes
    /// (<paramref name="argument"/> null) or of a numeric argument.
    /// </summary>
    /// <param name="pattern">The probes.</param>
    /// <param name="argument">The argument to histogram, by parameter name; null for latency in nanoseconds.</param>
    /// <param name="options">Points and fault tolerance; latency histograms see only return hits.</param>
    public static ProbeHistogram Histogram(string pattern, string? argument = null, ProbeAttachOptions? options = null)
    {
        var histogram = new ProbeHistogram(argument);
        options ??= ProbeAttachOptions.Default;
        if (argument is null)
            options = options with { Points = ProbePoints.Return };
        histogram.Attachment = Attach(pattern, histogram, options);
        return histogram;
    }

    /// <summary>Binds every live pattern attachment that matches a newly registered site. Caller holds <see cref="WriterLock"/>.</summary>
    internal static void BindNewSiteUnderLock(ProbeSite site)
    {
        foreach (ProbeAttachment attachment in s_patternAttachments)
        {
            if (!attachment.Pattern!.Matches(site.Descriptor.Id))
                continue;
            try
            {
                BindUnderLock(attachment, site);
            }
            catch (Exception ex)
            {
                // A consumer's OnAttach must not fail the registration of an assembly's probes
                // (a module initializer): count it as that consumer's fault and leave the site unbound.
                attachment.ReportFault(ex);
            }
        }
    }

    /// <summary>Drops a detached pattern attachment. Caller holds <see cref="WriterLock"/>.</summary>
    internal static void ForgetPatternUnderLock(ProbeAttachment attachment)
    {
        if (attachment.Pattern is not null)
            s_patternAttachments = Array.FindAll(s_patternAttachments, a => !ReferenceEquals(a, attachment));
    }

    private static void BindUnderLock(ProbeAttachment attachment, ProbeSite site)
    {
        ProbePoints wanted = site.Descriptor.Kind == ProbeKind.Static ? ProbePoints.Fire : ProbePoints.Entry | ProbePoints.Return;
        if ((attachment.Options.Points & wanted) == 0 || !attachment.IsAttachedUnderLock)
            return;
        object? state = attachment.Consumer!.OnAttach(site.Descriptor);
        // OnAttach may have detached this very attachment (deferred; the lock is reentrant): a
        // binding added now would outlive the detach and never be removed.
        if (!attachment.IsAttachedUnderLock)
            return;
        attachment.AddBindingUnderLock(site.BindUnderLock(attachment, attachment.Consumer, state));
    }
}
