using System;
using System.Threading.Tasks;
using ProbeGen;

namespace Shop.Services;

/// <summary>What a payment attempt returns.</summary>
public sealed record Receipt(bool Approved, string Reference);

/// <summary>Charges cards.</summary>
public interface IPayments
{
    /// <summary>Charges <paramref name="amount"/> to <paramref name="cardNumber"/>.</summary>
    Task<Receipt> ChargeAsync(string cardNumber, decimal amount);
}

[ProbeProvider("payments")]
internal sealed class Payments : IPayments
{
    [Probe("charge")]
    public async Task<Receipt> ChargeAsync(string cardNumber, decimal amount)
    {
        await Task.Delay(1);  // the payment provider's round trip
        // The test provider declines every amount over 400.
        return amount > 400m
            ? new Receipt(false, "declined")
            : new Receipt(true, "ch_" + Math.Abs(HashCode.Combine(cardNumber[^4..], amount)).ToString("x"));
    }
}
