using System.Collections.Generic;
using System.Linq;
using ProbeGen;

namespace Shop.Data;

/// <summary>Something the shop sells.</summary>
public sealed record Product(string Sku, string Name, decimal Price);

/// <summary>The catalog, as the services see it: they get it from DI and call it through this interface.</summary>
public interface IProductRepository
{
    /// <summary>The product with <paramref name="sku"/>, or null.</summary>
    Product? Find(string sku);

    /// <summary>Every product.</summary>
    IReadOnlyList<Product> All();
}

// The probes sit on the implementation, which is internal: callers only ever see the interface.
[ProbeProvider("data")]
internal sealed class InMemoryProductRepository : IProductRepository
{
    private readonly Dictionary<string, Product> _products = new[]
    {
        new Product("book", "A good book", 12.50m),
        new Product("lamp", "Desk lamp", 31.00m),
        new Product("mug", "Coffee mug", 7.25m),
        new Product("desk", "Standing desk", 420.00m),
        new Product("chair", "Office chair", 189.90m),
    }.ToDictionary(p => p.Sku);

    [Probe("find")]
    public Product? Find(string sku) => _products.GetValueOrDefault(sku);

    [Probe("all")]
    public IReadOnlyList<Product> All() => _products.Values.OrderBy(p => p.Sku).ToList();
}
