using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using ProbeGen;
using Shop.Data;

namespace Shop.Services;

/// <summary>The outcome of a checkout.</summary>
public sealed record CheckoutResult(bool Placed, int OrderId, decimal Amount, string Reason);

/// <summary>Turns a basket into an order.</summary>
public interface ICheckout
{
    /// <summary>Prices, charges and saves an order for <paramref name="skus"/>.</summary>
    Task<CheckoutResult> PlaceAsync(string customer, string cardNumber, string[] skus);
}

[ProbeProvider("orders")]
internal sealed class Checkout(IProductRepository products, IPricing pricing, IPayments payments, IOrderStore store) : ICheckout
{
    [Probe("place")]
    public async Task<CheckoutResult> PlaceAsync(string customer, string cardNumber, string[] skus)
    {
        var items = new List<Product>();
        foreach (string sku in skus)
        {
            if (products.Find(sku) is not { } product)
                return new CheckoutResult(false, 0, 0, $"no such product '{sku}'");
            items.Add(product);
        }
        decimal amount = pricing.Quote(items, customer);
        Receipt receipt = await payments.ChargeAsync(cardNumber, amount);
        if (!receipt.Approved)
        {
            OrderProbes.Declined(customer, amount);
            return new CheckoutResult(false, 0, amount, receipt.Reference);
        }
        int id = await store.SaveAsync(new Order(customer, skus, amount));
        OrderProbes.Placed(id, amount, customer);
        return new CheckoutResult(true, id, amount, receipt.Reference);
    }
}

/// <summary>Static probes: points in the code worth watching, with the values at that point.</summary>
[ProbeProvider("orders")]
public static partial class OrderProbes
{
    /// <summary>An order was saved.</summary>
    [Probe("placed")]
    public static partial void Placed(int orderId, decimal amount, string customer);

    /// <summary>A payment was declined.</summary>
    [Probe("declined")]
    public static partial void Declined(string customer, decimal amount);
}
