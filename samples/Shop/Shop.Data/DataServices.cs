using Microsoft.Extensions.DependencyInjection;

namespace Shop.Data;

/// <summary>Registers the data layer.</summary>
public static class DataServices
{
    /// <summary>Adds the repositories as singletons behind their interfaces.</summary>
    public static IServiceCollection AddShopData(this IServiceCollection services) =>
        services.AddSingleton<IProductRepository, InMemoryProductRepository>()
                .AddSingleton<IOrderStore, InMemoryOrderStore>();
}
