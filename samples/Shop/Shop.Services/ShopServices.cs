using Microsoft.Extensions.DependencyInjection;

namespace Shop.Services;

/// <summary>Registers the business layer.</summary>
public static class ShopServices
{
    /// <summary>Adds checkout, pricing and payments behind their interfaces.</summary>
    public static IServiceCollection AddShopServices(this IServiceCollection services) =>
        services.AddSingleton<IPricing, Pricing>()
                .AddSingleton<IPayments, Payments>()
                .AddScoped<ICheckout, Checkout>();
}
