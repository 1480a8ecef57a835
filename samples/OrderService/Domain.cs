using System;
using System.Collections.Concurrent;
using System.Threading;
using System.Threading.Tasks;
using ProbeGen;

namespace OrderService;

/// <summary>What a successful charge returns.</summary>
public sealed record Receipt(string Card, decimal Amount, string AuthorizationCode);

/// <summary>A card was declined.</summary>
public sealed class PaymentDeclinedException(string card) : Exception($"card {card} was declined");

/// <summary>A payment gateway, simulated in-process: a little latency, and some declines.</summary>
[ProbeProvider("payments")]
public sealed class PaymentService
{
    private int _sequence;

    /// <summary>False to answer at once, for a workload that is all probe hits (<c>--no-latency</c>).</summary>
    public bool SimulateLatency { get; init; } = true;

    /// <summary>
    /// Charges a card after a simulated network round trip. A method probe: every call fires entry,
    /// and return when the task completes. The card number never leaves the process: traces show
    /// <c>[redacted]</c>, also where an exception message quotes it.
    /// </summary>
    [Probe("charge")]
    [return: ProbeRedact]
    public async Task<Receipt> ChargeAsync([ProbeRedact] string card, decimal amount)
    {
        if (SimulateLatency)
            await Task.Delay(Random.Shared.Next(1, 4));
        if (card.EndsWith('0'))
            throw new PaymentDeclinedException(card);
        return new Receipt(card, amount, $"AUTH{Interlocked.Increment(ref _sequence):D6}");
    }
}

/// <summary>A price cache in front of a slow catalog.</summary>
[ProbeProvider("catalog")]
public sealed class PriceCache
{
    private readonly ConcurrentDictionary<string, decimal> _prices = new();

    /// <summary>The price of a SKU, from the cache when it is there.</summary>
    public decimal PriceOf(string sku)
    {
        bool hit = _prices.TryGetValue(sku, out decimal price);
        OrderProbes.CacheLookup(sku, hit);
        if (!hit)
            _prices[sku] = price = LookUpPrice(sku);
        return price;
    }

    /// <summary>The slow path: a method probe on a synchronous method.</summary>
    [Probe("lookup")]
    internal static decimal LookUpPrice(string sku) => 5m + sku.Length * 1.25m + (sku[^1] % 7);
}

/// <summary>Takes orders: prices the items, charges the card, records the order.</summary>
public sealed class Orders(PriceCache prices, PaymentService payments)
{
    private int _nextId;

    /// <summary>Places one order; returns false when the card is declined.</summary>
    public async Task<bool> PlaceAsync(string customer, string card, string[] skus)
    {
        decimal total = 0;
        foreach (string sku in skus)
            total += prices.PriceOf(sku);
        try
        {
            await payments.ChargeAsync(card, total);
        }
        catch (PaymentDeclinedException)
        {
            return false;
        }
        OrderProbes.Placed(Interlocked.Increment(ref _nextId), total, customer);
        return true;
    }
}
