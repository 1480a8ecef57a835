using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using OrderService;
using ProbeGen;

// OrderService: a small shop with probes. By default it attaches in-process consumers, runs a
// bounded workload and prints what they saw. --forever keeps taking orders until Ctrl-C;
// --quiet attaches nothing (for tracing it from outside); --no-latency drops the simulated
// payment latency, so the workload runs as fast as its probes let it.
bool forever = args.Contains("--forever");
bool quiet = args.Contains("--quiet");
bool noLatency = args.Contains("--no-latency");
int orders = 200;
if (args.SkipWhile(a => a != "--orders").Skip(1).FirstOrDefault() is { } n && !int.TryParse(n, out orders))
{
    Console.Error.WriteLine($"--orders needs a number, not '{n}'");
    return 2;
}

Console.WriteLine($"OrderService: {ProbeCatalog.All.Count} probes registered:");
foreach (ProbeDescriptor probe in ProbeCatalog.All)
    Console.WriteLine($"  {probe.Id,-22} {probe.Kind,-6} ({string.Join(", ", probe.Parameters.Select(p => $"{p.Type} {p.Name}"))}){(probe.ReturnType is null ? "" : " -> " + probe.ReturnType)}");

ProbeCounter? counter = null;
ProbeHistogram? latency = null, amounts = null;
ProbeAttachment? printer = null;
var firstHits = new System.Collections.Concurrent.ConcurrentQueue<string>();
if (!quiet)
{
    counter = Probes.Count("*");
    latency = Probes.Histogram("payments:charge");
    amounts = Probes.Histogram("orders:placed", "amount");
    int printed = 0;
    // The first few hits, described in the handler and printed by the main thread: a handler
    // runs on the probed thread inside a read-side section, so it must not do console I/O.
    printer = Probes.Attach("*", (in ProbeHit hit) =>
    {
        if (Interlocked.Increment(ref printed) <= 8)
            firstHits.Enqueue(hit.ToString());
    });
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
var shop = new Orders(new PriceCache(), new PaymentService { SimulateLatency = !noLatency });
string[] customers = ["ada", "grace", "linus", "barbara", "ken"];
string[] catalog = ["book", "lamp", "mug", "desk", "chair", "pen", "ink"];
int placed = 0, declined = 0;
var workers = Enumerable.Range(0, 4).Select(async w =>
{
    for (int i = w; forever ? !stop.IsCancellationRequested : i < orders; i += 4)
    {
        string[] skus = catalog.Skip(i % catalog.Length).Take(1 + i % 3).ToArray();
        bool ok = await shop.PlaceAsync(customers[i % customers.Length], $"4111-{i % 50:D4}", skus);
        Interlocked.Increment(ref ok ? ref placed : ref declined);
    }
}).ToArray();
await Task.WhenAll(workers);

Console.WriteLine($"done: {placed} orders placed, {declined} declined");
if (!quiet)
{
    Console.WriteLine("first hits:");
    foreach (string line in firstHits)
        Console.WriteLine("  " + line);
    printer!.Dispose();
    counter!.Dispose();
    latency!.Dispose();
    amounts!.Dispose();
    Console.WriteLine("hits per probe:");
    foreach (var (id, count) in counter.ByProbe.OrderBy(p => p.Key))
        Console.WriteLine($"  {id,-22} {count,8}");
    Console.WriteLine();
    Console.Write(latency.Render());
    Console.Write(amounts.Render());
}
return 0;
