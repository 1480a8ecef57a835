using System.Collections.Generic;
using System.Linq;
using ProbeGen;
using Shop.Data;

namespace Shop.Services;

/// <summary>Prices a basket.</summary>
public interface IPricing
{
    /// <summary>The price of <paramref name="items"/> for <paramref name="customer"/>.</summary>
    decimal Quote(IReadOnlyList<Product> items, string customer);
}

[ProbeProvider("pricing")]
internal sealed class Pricing : IPricing
{
    [Probe("quote")]
    public decimal Quote(IReadOnlyList<Product> items, string customer)
    {
        decimal total = items.Sum(p => p.Price);
        // Regulars get 10% off.
        return customer is "ada" or "grace" ? decimal.Round(total * 0.9m, 2) : total;
    }
}
