using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Text.Json;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Xunit;

namespace ProbeGen.OpenTelemetry.Tests;

/// <summary>
/// A real Prometheus server (Debian's package) scrapes this process's OpenTelemetry Prometheus
/// endpoint, and its HTTP API answers with the exact per-probe call counts.
/// </summary>
public sealed class PrometheusTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("probegen-prometheus-").FullName;
    private Process? _prometheus;

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [Fact]
    public async System.Threading.Tasks.Task PrometheusScrapesExactPerProbeCallCounts()
    {
        string provider = "prom" + Guid.NewGuid().ToString("N")[..8];
        var placed = new StaticProbeSite<ProbeArgs<int>>(new ProbeDescriptor(provider, "placed", ProbeKind.Static, [new ProbeParameter("id", "int")]));
        var charged = new StaticProbeSite<ProbeArgs<int>>(new ProbeDescriptor(provider, "charged", ProbeKind.Static, [new ProbeParameter("id", "int")]));
        ProbeCatalog.Register(typeof(PrometheusTests).Assembly, placed);
        ProbeCatalog.Register(typeof(PrometheusTests).Assembly, charged);

        int appPort = FreePort();
        using MeterProvider meters = Sdk.CreateMeterProviderBuilder()
            .AddProbeGen(provider + ":*")
            .AddPrometheusHttpListener(o =>
            {
                o.Host = "127.0.0.1";
                o.Port = appPort;
            })
            .Build();
        for (int i = 0; i < 37; i++)
            placed.Fire(new ProbeArgs<int>(i));
        for (int i = 0; i < 5; i++)
            charged.Fire(new ProbeArgs<int>(i));

        int prometheusPort = FreePort();
        string config = Path.Combine(_work, "prometheus.yml");
        File.WriteAllText(config, $"""
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: probegen-test
                scrape_interval: 1s
                static_configs:
                  - targets: ['127.0.0.1:{appPort}']
            """);
        var start = new ProcessStartInfo("prometheus") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(_work, "data")}", $"--web.listen-address=127.0.0.1:{prometheusPort}" })
            start.ArgumentList.Add(a);
        try
        {
            _prometheus = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            Assert.Fail($"the prometheus server is not installed ({ex.Message}); .ci/run installs Debian's prometheus package");
        }
        _prometheus.OutputDataReceived += (_, _) => { };
        _prometheus.ErrorDataReceived += (_, _) => { };
        _prometheus.BeginOutputReadLine();
        _prometheus.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var counts = new Dictionary<string, double>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            await System.Threading.Tasks.Task.Delay(500);
            Assert.False(_prometheus.HasExited, "prometheus exited");
            try
            {
                string query = Uri.EscapeDataString($"probegen_calls_total{{probe_id=~\"{provider}:.*\"}}");
                using JsonDocument answer = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{prometheusPort}/api/v1/query?query={query}"));
                counts.Clear();
                foreach (JsonElement series in answer.RootElement.GetProperty("data").GetProperty("result").EnumerateArray())
                    counts[series.GetProperty("metric").GetProperty("probe_id").GetString()!] = double.Parse(series.GetProperty("value")[1].GetString()!, System.Globalization.CultureInfo.InvariantCulture);
                if (counts.Count == 2)
                    break;
            }
            catch (Exception ex) when (ex is HttpRequestException or System.Threading.Tasks.TaskCanceledException or KeyNotFoundException or JsonException)
            {
                // Not ready yet, or no scrape yet.
            }
        }
        Assert.Equal(37, counts.GetValueOrDefault($"{provider}:placed"));
        Assert.Equal(5, counts.GetValueOrDefault($"{provider}:charged"));
    }

    public void Dispose()
    {
        if (_prometheus is { HasExited: false })
        {
            _prometheus.Kill();
            _prometheus.WaitForExit(5000);
        }
        _prometheus?.Dispose();
        Directory.Delete(_work, recursive: true);
    }
}
