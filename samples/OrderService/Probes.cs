using System.Runtime.CompilerServices;
using ProbeGen;

namespace OrderService;

// What the [Probe] generator will write for this app, written out by hand until the generator
// exists: one site per probe, a module initializer that registers them, and probe bodies that
// are a disabled check (one load, one branch) around a typed, allocation-free fire.

/// <summary>The orders provider's static probes.</summary>
internal static class OrderProbes
{
    internal static readonly StaticProbeSite<ProbeArgs<int, decimal, string>> PlacedSite = new(
        new ProbeDescriptor("orders", "placed", ProbeKind.Static,
            [new("orderId", "int"), new("amount", "decimal"), new("customer", "string")], file: "Probes.cs", line: 20));

    internal static readonly StaticProbeSite<ProbeArgs<string, bool>> CacheLookupSite = new(
        new ProbeDescriptor("orders", "cache_lookup", ProbeKind.Static,
            [new("sku", "string"), new("hit", "bool")], file: "Probes.cs", line: 24));

    /// <summary>[Probe] static partial void Placed(int orderId, decimal amount, string customer);</summary>
    public static void Placed(int orderId, decimal amount, string customer)
    {
        if (PlacedSite.IsEnabled)
            PlacedSite.Fire(new ProbeArgs<int, decimal, string>(orderId, amount, customer));
    }

    /// <summary>[Probe("cache_lookup")] static partial void CacheLookup(string sku, bool hit);</summary>
    public static void CacheLookup(string sku, bool hit)
    {
        if (CacheLookupSite.IsEnabled)
            CacheLookupSite.Fire(new ProbeArgs<string, bool>(sku, hit));
    }

    [ModuleInitializer]
    internal static void Register() =>
        ProbeCatalog.Register(typeof(OrderProbes).Assembly, PlacedSite, CacheLookupSite, PaymentProbes.ChargeSite);
}

/// <summary>The method probe on <see cref="PaymentService.ChargeAsync"/>, and the interceptor the generator will emit for its call sites.</summary>
internal static class PaymentProbes
{
    internal static readonly MethodProbeSite<ProbeArgs<string, decimal>, Receipt> ChargeSite = new(
        new ProbeDescriptor("payments", "charge", ProbeKind.Method,
            [new("card", "string"), new("amount", "decimal")], "Receipt", "PaymentService.cs", 12));

    /// <summary>Fires entry, awaits the call, fires return with the receipt or the exception (rethrown unchanged).</summary>
    public static async System.Threading.Tasks.Task<Receipt> ChargeAsync(PaymentService service, string card, decimal amount)
    {
        if (!ChargeSite.IsEnabled)
            return await service.ChargeAsync(card, amount);
        var args = new ProbeArgs<string, decimal>(card, amount);
        long start = ChargeSite.Entry(args);
        try
        {
            Receipt receipt = await service.ChargeAsync(card, amount);
            ChargeSite.Return(args, receipt, start);
            return receipt;
        }
        catch (System.Exception ex) when (ChargeSite.Throw(args, ex, start))
        {
            throw;  // never reached: Throw returns false, so the exception flows on untouched
        }
    }
}
