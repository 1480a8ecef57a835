using ProbeGen;

namespace OrderService;

/// <summary>
/// The shop's static probes (USDT-style): bodiless partial methods whose bodies the ProbeGen
/// generator writes. Disabled, each costs one load and one branch at the call site.
/// </summary>
[ProbeProvider("orders")]
internal static partial class OrderProbes
{
    /// <summary>An order was placed and paid for.</summary>
    [Probe("placed")]
    public static partial void Placed(int orderId, decimal amount, string customer);

    /// <summary>The price cache was asked for a SKU.</summary>
    [Probe("cache_lookup")]
    public static partial void CacheLookup(string sku, bool hit);
}
