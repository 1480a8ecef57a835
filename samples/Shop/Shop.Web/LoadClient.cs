using System;
using System.Linq;
using System.Net.Http;
using System.Net.Http.Json;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Hosting;

namespace Shop.Web;

/// <summary>
/// A bounded load from a real HTTP client: once the server listens, it sends a fixed mix of
/// requests to it, one after another, prints a summary and stops the application.
/// </summary>
internal sealed class LoadClient(LoadClient.Options options, IServer server, IHostApplicationLifetime lifetime) : BackgroundService
{
    /// <summary>How many requests to send.</summary>
    public sealed record Options(int Requests);

    private static readonly string[] Customers = ["ada", "grace", "linus", "barbara"];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await WaitForStart(stoppingToken);
            string address = server.Features.Get<IServerAddressesFeature>()!.Addresses.First();
            using var http = new HttpClient { BaseAddress = new Uri(address) };
            int ok = 0, failed = 0;
            for (int i = 0; i < options.Requests && !stoppingToken.IsCancellationRequested; i++)
            {
                string customer = Customers[i % Customers.Length];
                using HttpResponseMessage response = (i % 4) switch
                {
                    0 => await http.GetAsync("/products", stoppingToken),
                    1 => await http.GetAsync("/products/lamp", stoppingToken),
                    // A small basket: approved and saved.
                    2 => await http.PostAsJsonAsync("/orders", new OrderRequest(customer, $"4111-0000-0000-{i:D4}", ["book", "mug"]), stoppingToken),
                    // Over the provider's limit: declined.
                    _ => await http.PostAsJsonAsync("/orders", new OrderRequest(customer, $"4111-0000-0000-{i:D4}", ["desk", "chair"]), stoppingToken),
                };
                if (response.IsSuccessStatusCode)
                    ok++;
                else
                    failed++;
            }
            Console.WriteLine($"Shop: {options.Requests} requests sent, {ok} succeeded, {failed} refused");
            // What a Prometheus server scraping this instance would read: the per-probe call counts.
            string scrape = await http.GetStringAsync("/metrics", stoppingToken);
            foreach (string line in scrape.Split('\n'))
                if (line.StartsWith("probegen_calls_total{", StringComparison.Ordinal))
                    Console.WriteLine("Shop: /metrics " + line);
        }
        finally
        {
            lifetime.StopApplication();
        }
    }

    private Task WaitForStart(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        stoppingToken.Register(() => started.TrySetCanceled());
        return started.Task;
    }
}
