using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace ProbeGen.Cli.Tests;

/// <summary>
/// A speedscope file from <c>probegen trace -o</c>, opened in the real speedscope (pinned in
/// <c>tests/viewers</c>) in a real headless Chromium: speedscope names the profile and lists a
/// timeline per thread, as it does only for a file it could import.
/// </summary>
public class ViewerTests
{
    [Fact]
    public async Task SpeedscopeInHeadlessChromiumOpensTheTrace()
    {
        string release = Path.Combine(MetricsTests.RepositoryRoot(), "tests", "viewers", "node_modules", "speedscope", "dist", "release");
        Assert.True(File.Exists(Path.Combine(release, "index.html")), $"speedscope is not installed in {release}; .ci/run runs npm ci --prefix tests/viewers");

        string profile = Path.Combine(Path.GetTempPath(), $"probegen-{Guid.NewGuid():N}.speedscope.json");
        try
        {
            Result run = Processes.Run(TimeSpan.FromSeconds(120), "trace", "orders:*", "payments:*", "catalog:*", "-o", profile, "--json", "--", "dotnet", Processes.Sample, "--orders", "40");
            Assert.True(run.ExitCode == 0, run.ToString());

            // Served over HTTP: Chromium will not let a page fetch a file:// profile.
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            using var http = new HttpListener();
            http.Prefixes.Add($"http://127.0.0.1:{port}/");
            http.Start();
            using var stop = new CancellationTokenSource();
            Task server = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    HttpListenerContext context;
                    try
                    {
                        context = await http.GetContextAsync();
                    }
                    catch (Exception) when (stop.IsCancellationRequested)
                    {
                        return;
                    }
                    string name = context.Request.Url!.AbsolutePath.TrimStart('/');
                    string path = name == "profile.json" ? profile : Path.Combine(release, name);
                    if (name.Contains("..") || !File.Exists(path))
                    {
                        context.Response.StatusCode = 404;
                    }
                    else
                    {
                        context.Response.ContentType = Path.GetExtension(path) switch
                        {
                            ".html" => "text/html",
                            ".js" => "text/javascript",
                            ".css" => "text/css",
                            ".wasm" => "application/wasm",
                            ".json" => "application/json",
                            _ => "application/octet-stream",
                        };
                        byte[] body = await File.ReadAllBytesAsync(path);
                        await context.Response.OutputStream.WriteAsync(body);
                    }
                    context.Response.Close();
                }
            });

            string url = $"http://127.0.0.1:{port}/index.html#profileURL={Uri.EscapeDataString($"http://127.0.0.1:{port}/profile.json")}";
            var start = new ProcessStartInfo("chromium") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in new[] { "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", $"--user-data-dir={Path.Combine(Path.GetTempPath(), "probegen-chromium-" + Guid.NewGuid().ToString("N"))}", "--dump-dom", url })
                start.ArgumentList.Add(a);
            using Process chromium = Process.Start(start) ?? throw new InvalidOperationException("chromium did not start");
            var stderr = chromium.StandardError.ReadToEndAsync();
            string dom = await chromium.StandardOutput.ReadToEndAsync();
            Assert.True(chromium.WaitForExit(60_000), "chromium did not finish");
            stop.Cancel();
            http.Stop();
            await server;

            Assert.Contains("<title>probegen trace - speedscope</title>", dom);
            Assert.Contains("thread ", dom);
            Assert.DoesNotContain("Something went wrong", dom);
        }
        finally
        {
            File.Delete(profile);
        }
    }
}
