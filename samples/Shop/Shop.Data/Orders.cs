using System.Collections.Concurrent;
using System.Threading;
using System.Threading.Tasks;
using ProbeGen;

namespace Shop.Data;

/// <summary>A placed order.</summary>
public sealed record Order(string Customer, string[] Skus, decimal Amount);

/// <summary>Where placed orders go.</summary>
public interface IOrderStore
{
    /// <summary>Saves <paramref name="order"/> and returns its id.</summary>
    Task<int> SaveAsync(Order order);
}

[ProbeProvider("data")]
internal sealed class InMemoryOrderStore : IOrderStore
{
    private readonly ConcurrentDictionary<int, Order> _orders = new();
    private int _next;

    [Probe("save")]
    public async Task<int> SaveAsync(Order order)
    {
        await Task.Yield();  // a real store would do I/O here
        int id = Interlocked.Increment(ref _next);
        _orders[id] = order;
        return id;
    }
}
