using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Xunit;
using Xunit.Abstractions;

namespace ProbeGen.Generator.Tests;

/// <summary>
/// Packs the repository into a local feed and builds a fresh project that references only the
/// ProbeGen package, exactly as a user would, then runs it.
/// </summary>
/// <summary>The repository packed once into a local feed, and the packed probegen tool installed from it.</summary>
public sealed class PackedFeed : IDisposable
{
    public PackedFeed()
    {
        string root = Harness.RepositoryRoot();
        Work = Directory.CreateTempSubdirectory("probegen-pack-").FullName;
        Feed = Path.Combine(Work, "feed");
        Packages = Path.Combine(Work, "packages");
        Version = "0.1.0-test" + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff");
        Shell.Run(null, root, "dotnet", $"pack \"{Path.Combine(root, "runtime/ProbeGen.Runtime/ProbeGen.Runtime.csproj")}\" -c Release -o \"{Feed}\" -p:Version={Version}");
        Shell.Run(null, root, "dotnet", $"pack \"{Path.Combine(root, "runtime/ProbeGen.Cli/ProbeGen.Cli.csproj")}\" -c Release -o \"{Feed}\" -p:Version={Version}");
        Shell.Run(null, root, "dotnet", $"pack \"{Path.Combine(root, "runtime/ProbeGen.OpenTelemetry/ProbeGen.OpenTelemetry.csproj")}\" -c Release -o \"{Feed}\" -p:Version={Version}");
        string tools = Path.Combine(Work, "tools");
        Shell.Run(null, Work, "dotnet", $"tool install --tool-path \"{tools}\" --add-source \"{Feed}\" ProbeGen.Cli --version {Version}", ("NUGET_PACKAGES", Packages));
        Probegen = Path.Combine(tools, "probegen");
        // ProbeGen's packages come only from the local feed, so they must bring everything they
        // need; other packages (OpenTelemetry's, for the Shop) come from nuget.org, as for a user.
        // The repository's Directory.Build.props and central versions stay out of the fresh projects.
        File.WriteAllText(Path.Combine(Work, "nuget.config"), $"""
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{Feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
              <packageSourceMapping>
                <packageSource key="local">
                  <package pattern="ProbeGen" />
                  <package pattern="ProbeGen.*" />
                </packageSource>
                <packageSource key="nuget.org">
                  <package pattern="*" />
                </packageSource>
              </packageSourceMapping>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(Work, "Directory.Build.props"), "<Project />");
        File.WriteAllText(Path.Combine(Work, "Directory.Packages.props"), "<Project />");
    }

    public string Work { get; }
    public string Feed { get; }
    public string Packages { get; }
    public string Version { get; }
    public string Probegen { get; }

    public void Dispose() => Directory.Delete(Work, recursive: true);
}

public class PackageTests(ITestOutputHelper output, PackedFeed packed) : IClassFixture<PackedFeed>
{
    private const string App = """
        using System;
        using System.Threading.Tasks;
        using ProbeGen;

        int fired = 0, entries = 0, returns = 0;
        object? lastReturn = null;
        using var all = Probes.Attach("app:*", (in ProbeHit hit) =>
        {
            switch (hit.Point)
            {
                case ProbePoint.Fire: fired++; break;
                case ProbePoint.Entry: entries++; break;
                default: returns++; lastReturn = hit.ReturnValue; break;
            }
        });
        AppProbes.Started(42, "packaged");
        int sum = await new Worker().AddAsync(2, 3);
        Console.WriteLine($"sum={sum} fired={fired} entries={entries} returns={returns} last={lastReturn} probes={ProbeCatalog.All.Count}");
        Console.WriteLine($"files={string.Join(",", System.Linq.Enumerable.Select(ProbeCatalog.All, p => p.File))}");
        return sum == 5 && fired == 1 && entries == 1 && returns == 1 && Equals(lastReturn, 5) ? 0 : 1;

        [ProbeProvider("app")]
        static partial class AppProbes
        {
            [Probe] public static partial void Started(int id, string name);
        }

        [ProbeProvider("app")]
        class Worker
        {
            [Probe("add")] public async Task<int> AddAsync(int a, int b) { await Task.Yield(); return a + b; }
        }
        """;

    [Fact]
    public void AFreshProjectWithOnlyThePackageReferenceGetsWorkingProbes()
    {
        string nupkg = Path.Combine(packed.Feed, $"ProbeGen.{packed.Version}.nupkg");
        Assert.True(File.Exists(nupkg));
        // Ready for nuget.org: license, icon, a README, symbols, and no path of this machine in any binary.
        Assert.True(File.Exists(Path.ChangeExtension(nupkg, ".snupkg")));
        using (var package = System.IO.Compression.ZipFile.OpenRead(nupkg))
        {
            Assert.Contains(package.Entries, e => e.FullName == "LICENSE");
            Assert.Contains(package.Entries, e => e.FullName == "icon.png");
            Assert.Contains(package.Entries, e => e.FullName == "README.md");
            string root = Harness.RepositoryRoot();
            foreach (var dll in package.Entries.Where(e => e.FullName.EndsWith(".dll", StringComparison.Ordinal)))
            {
                using var stream = dll.Open();
                using var reader = new StreamReader(stream, System.Text.Encoding.Latin1);
                Assert.DoesNotContain(root, reader.ReadToEnd());
            }
        }
        string app = Path.Combine(packed.Work, "app");
        Directory.CreateDirectory(app);
        File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="ProbeGen" Version="{packed.Version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), App);

        string stdout = Run(app, "dotnet", "run -c Release", ("NUGET_PACKAGES", packed.Packages));
        Assert.Contains("sum=5 fired=1 entries=1 returns=1 last=5 probes=2", stdout);
        // Source paths relative to the project: nothing of the build machine's file system in the app.
        Assert.Contains("files=Program.cs,Program.cs", stdout);

        // The same app under the packed probegen tool, in launch mode, as a user would run it.
        string trace = Run(app, packed.Probegen, $"trace app:* --json -- dotnet \"{Path.Combine(app, "bin/Release/net10.0/App.dll")}\"");
        string[] lines = trace.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.Contains("\"probe\":\"app:Started\",\"point\":\"fire\",\"args\":{\"id\":42,\"name\":\"packaged\"}", lines[0]);
        Assert.Contains("\"probe\":\"app:add\",\"point\":\"entry\",\"args\":{\"a\":2,\"b\":3}", lines[1]);
        Assert.Contains("\"point\":\"return\",\"args\":{\"a\":2,\"b\":3},\"ret\":5,", lines[2]);
        Assert.Equal("{\"summary\":{\"events\":3,\"dropped\":0}}", lines[3]);

        // The analyzers come with the package: an unsafe handler is reported in the user's build.
        File.WriteAllText(Path.Combine(app, "Unsafe.cs"), """
            static class Unsafe
            {
                public static ProbeGen.ProbeAttachment Attach() =>
                    ProbeGen.Probes.Attach("app:*", (in ProbeGen.ProbeHit hit) => System.Threading.Thread.Sleep(1));
            }
            """);
        string build = Run(app, "dotnet", "build -c Release -p:TreatWarningsAsErrors=false", ("NUGET_PACKAGES", packed.Packages));
        Assert.Contains("warning PG1001", build);

        // A C# 14 extension block member cannot be intercepted: the real compiler gets PG0010, and no error from generated code.
        File.WriteAllText(Path.Combine(app, "Extensions.cs"), """
            static class Extensions
            {
                extension(int x)
                {
                    [ProbeGen.Probe] public int Twice() => x * 2;
                }
            }
            """);
        var (exit, failed) = Shell.Start(output, app, "dotnet", "build -c Release -p:TreatWarningsAsErrors=false", ("NUGET_PACKAGES", packed.Packages));
        File.Delete(Path.Combine(app, "Extensions.cs"));
        Assert.NotEqual(0, exit);
        Assert.Contains("error PG0010", failed);
        Assert.Contains("a member of an extension block", failed);
        Assert.DoesNotContain("error CS", failed);

        // A project for an older .NET gets one plain error from the package, not a compiler error about missing types.
        string old = Path.Combine(packed.Work, "app8");
        Directory.CreateDirectory(old);
        File.WriteAllText(Path.Combine(old, "App8.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net8.0</TargetFramework>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="ProbeGen" Version="{packed.Version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(old, "Program.cs"), "ProbeGen.Probes.Attach(\"*\", (in ProbeGen.ProbeHit h) => { });");
        var (oldExit, oldBuild) = Shell.Start(output, old, "dotnet", "build", ("NUGET_PACKAGES", packed.Packages));
        Assert.NotEqual(0, oldExit);
        Assert.Contains("error PG0100: ProbeGen needs .NET 10 or later", oldBuild);
        Assert.DoesNotContain("error CS", oldBuild);
    }

    /// <summary>
    /// Packed from a clone whose origin is on GitHub, as a release would be: the package names
    /// its repository, commit and project page, and SourceLink maps every source in the symbols
    /// to that commit's raw files, under the /_/ root rather than a path of this machine.
    /// The clone holds the committed state of the repository.
    /// </summary>
    [Fact]
    public void APackFromAGitHubCloneCarriesSourceLinkAndTheProjectUrl()
    {
        string clone = Path.Combine(packed.Work, "clone");
        Shell.Run(output, packed.Work, "git", $"clone -q \"{Harness.RepositoryRoot()}\" \"{clone}\"");
        Shell.Run(output, clone, "git", "remote set-url origin https://github.com/probegen/probegen.git");
        string commit = Shell.Run(output, clone, "git", "rev-parse HEAD").Trim();
        string feed = Path.Combine(clone, "feed");
        Shell.Run(output, clone, "dotnet", $"pack runtime/ProbeGen.Runtime/ProbeGen.Runtime.csproj -c Release -o \"{feed}\" -p:Version={packed.Version}");

        using var package = System.IO.Compression.ZipFile.OpenRead(Path.Combine(feed, $"ProbeGen.{packed.Version}.nupkg"));
        using (var nuspec = new StreamReader(package.GetEntry("ProbeGen.nuspec")!.Open()))
        {
            string text = nuspec.ReadToEnd();
            Assert.Contains("<projectUrl>https://github.com/probegen/probegen</projectUrl>", text);
            // The branch is whichever the clone checked out; the url and the commit are what matter.
            Assert.Matches($"<repository type=\"git\" url=\"https://github.com/probegen/probegen.git\" branch=\"refs/heads/[^\"]+\" commit=\"{commit}\" />", text);
        }

        using var symbols = System.IO.Compression.ZipFile.OpenRead(Path.Combine(feed, $"ProbeGen.{packed.Version}.snupkg"));
        using var pdbStream = new MemoryStream();
        using (var entry = symbols.GetEntry("lib/net10.0/ProbeGen.Runtime.pdb")!.Open())
            entry.CopyTo(pdbStream);
        pdbStream.Position = 0;
        using var provider = System.Reflection.Metadata.MetadataReaderProvider.FromPortablePdbStream(pdbStream);
        var pdb = provider.GetMetadataReader();
        var sourceLinkKind = new Guid("CC110556-A091-4D38-9FEC-25AB9A351A6A");
        string? sourceLink = pdb.CustomDebugInformation
            .Select(pdb.GetCustomDebugInformation)
            .Where(info => pdb.GetGuid(info.Kind) == sourceLinkKind)
            .Select(info => System.Text.Encoding.UTF8.GetString(pdb.GetBlobBytes(info.Value)))
            .SingleOrDefault();
        Assert.Equal($"{{\"documents\":{{\"/_/*\":\"https://raw.githubusercontent.com/probegen/probegen/{commit}/*\"}}}}", sourceLink);
        var documents = pdb.Documents.Select(d => pdb.GetString(pdb.GetDocument(d).Name)).ToList();
        Assert.Contains("/_/runtime/ProbeGen.Runtime/Sites/ProbeSite.cs", documents);
        Assert.All(documents, d => Assert.StartsWith("/_/", d));
    }

    private const string PublishedApp = """
        using System;
        using System.Threading;
        using ProbeGen;

        // Runs until killed when given no count, so that probegen can find it running.
        int n = args.Length > 0 ? int.Parse(args[0]) : int.MaxValue;
        for (int i = 0; i < n; i++)
        {
            AppProbes.Tick(i, "published");
            new Worker().Add(i, 1);
            Thread.Sleep(n == int.MaxValue ? 20 : 0);
        }
        Console.WriteLine("done");

        [ProbeProvider("app")]
        static partial class AppProbes
        {
            [Probe] public static partial void Tick(int id, string name);
        }

        [ProbeProvider("app")]
        class Worker
        {
            [Probe("add")] public int Add(int a, int b) => a + b;
        }
        """;

    /// <summary>
    /// The app published trimmed, and published NativeAOT, as a user would: no setting beyond
    /// PublishTrimmed or PublishAot, warnings as errors, and both traced by the packed tool.
    /// A NativeAOT app has ProbeGen compiled into its executable; <c>ps</c> still finds it.
    /// </summary>
    [Theory]
    [InlineData("PublishTrimmed", "App.dll")]
    [InlineData("PublishAot", "App")]
    public void AnAppPublishedTrimmedOrNativeAotBuildsWithoutWarningsAndCanBeTraced(string publish, string entry)
    {
        string app = Path.Combine(packed.Work, publish);
        Directory.CreateDirectory(app);
        File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <{publish}>true</{publish}>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="ProbeGen" Version="{packed.Version}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), PublishedApp);
        string published = Run(app, "dotnet", "publish -c Release -r linux-x64 -o out", ("NUGET_PACKAGES", packed.Packages));
        Assert.DoesNotContain("warning", published, StringComparison.OrdinalIgnoreCase);
        string binary = Path.Combine(app, "out", entry);
        string command = entry.EndsWith(".dll", StringComparison.Ordinal) ? $"dotnet \"{binary}\"" : $"\"{binary}\"";

        // Launch mode: traced from startup, every hit, in order.
        string trace = Run(app, packed.Probegen, $"trace app:* --json -- {command} 2");
        string[] lines = trace.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(7, lines.Length);
        Assert.Contains("\"probe\":\"app:Tick\",\"point\":\"fire\",\"args\":{\"id\":1,\"name\":\"published\"}", lines[3]);
        Assert.Contains("\"probe\":\"app:add\",\"point\":\"return\",\"args\":{\"a\":1,\"b\":1},\"ret\":2,", lines[5]);
        Assert.Equal("{\"summary\":{\"events\":6,\"dropped\":0}}", lines[6]);

        // Attach mode, found by ps as a process with ProbeGen in it.
        var start = new ProcessStartInfo(entry.EndsWith(".dll", StringComparison.Ordinal) ? "dotnet" : binary) { RedirectStandardOutput = true };
        if (entry.EndsWith(".dll", StringComparison.Ordinal))
            start.ArgumentList.Add(binary);
        using Process running = Process.Start(start)!;
        try
        {
            string runtime = publish == "PublishAot" ? "nativeaot" : "coreclr";
            string? listed = null;
            for (int attempt = 0; attempt < 50 && listed is null; attempt++)
            {
                System.Threading.Thread.Sleep(100);
                listed = Run(app, packed.Probegen, "ps --json").Split('\n').FirstOrDefault(l => l.StartsWith($"{{\"pid\":{running.Id},", StringComparison.Ordinal));
            }
            Assert.NotNull(listed);
            Assert.Contains($"\"probegen\":true,\"runtime\":\"{runtime}\"", listed);
            string attached = Run(app, packed.Probegen, $"trace app:add -p {running.Id} --json --max-events 2");
            string[] hits = attached.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(3, hits.Length);
            Assert.Contains("\"probe\":\"app:add\",\"point\":\"entry\"", hits[0]);
            Assert.Contains("\"probe\":\"app:add\",\"point\":\"return\"", hits[1]);
            Assert.Equal("{\"summary\":{\"events\":2,\"dropped\":0}}", hits[2]);
        }
        finally
        {
            running.Kill(entireProcessTree: true);
        }
    }

    /// <summary>
    /// The Shop sample as a user's solution: three projects, ProbeGen referenced by the two
    /// libraries only (it reaches the web project transitively), probes on internal
    /// implementations called through DI interfaces from other projects. Traced from startup
    /// while real HTTP requests drive it, every probe yields exactly its hits.
    /// </summary>
    [Fact]
    public void AMultiProjectServiceBuiltFromThePackageFiresEveryCallThroughItsInterfaces()
    {
        string root = Harness.RepositoryRoot();
        string solution = Path.Combine(packed.Work, "shop");
        var projects = new (string Name, string References)[]
        {
            ("Shop.Data", $"<PackageReference Include=\"ProbeGen\" Version=\"{packed.Version}\" />"),
            ("Shop.Services", $"<PackageReference Include=\"ProbeGen\" Version=\"{packed.Version}\" /><ProjectReference Include=\"../Shop.Data/Shop.Data.csproj\" />"),
            ("Shop.Web", "<ProjectReference Include=\"../Shop.Services/Shop.Services.csproj\" />"
                + $"<PackageReference Include=\"ProbeGen.OpenTelemetry\" Version=\"{packed.Version}\" />"
                + "<PackageReference Include=\"OpenTelemetry.Extensions.Hosting\" Version=\"1.20.1\" />"
                + "<PackageReference Include=\"OpenTelemetry.Instrumentation.AspNetCore\" Version=\"1.20.2\" />"
                + "<PackageReference Include=\"OpenTelemetry.Exporter.Prometheus.AspNetCore\" Version=\"1.20.1-beta.1\" />"
                + "<PackageReference Include=\"OpenTelemetry.Exporter.OpenTelemetryProtocol\" Version=\"1.20.1\" />"),
        };
        foreach (var (name, references) in projects)
        {
            string dir = Path.Combine(solution, name);
            Directory.CreateDirectory(dir);
            foreach (string source in Directory.GetFiles(Path.Combine(root, "samples/Shop", name), "*.cs"))
                File.Copy(source, Path.Combine(dir, Path.GetFileName(source)));
            bool web = name == "Shop.Web";
            File.WriteAllText(Path.Combine(dir, name + ".csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk{(web ? ".Web" : "")}">
                  <PropertyGroup>
                    <TargetFramework>net10.0</TargetFramework>
                    <Nullable>enable</Nullable>
                    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                  </PropertyGroup>
                  <ItemGroup>
                    {(web ? "" : "<FrameworkReference Include=\"Microsoft.AspNetCore.App\" />")}
                    {references}
                  </ItemGroup>
                </Project>
                """);
        }
        Run(Path.Combine(solution, "Shop.Web"), "dotnet", "build -c Release", ("NUGET_PACKAGES", packed.Packages));
        string dll = Path.Combine(solution, "Shop.Web/bin/Release/net10.0/Shop.Web.dll");

        string trace = Run(solution, packed.Probegen, $"trace orders:* payments:* pricing:* data:* --json -- dotnet \"{dll}\" --requests 20");
        var counts = new System.Collections.Generic.Dictionary<string, int>();
        string? summary = null;
        foreach (string line in trace.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!line.StartsWith("{", StringComparison.Ordinal))
                continue;  // the app's own output
            using var json = System.Text.Json.JsonDocument.Parse(line);
            if (json.RootElement.TryGetProperty("summary", out var s))
            {
                summary = s.ToString();
                continue;
            }
            string key = json.RootElement.GetProperty("probe").GetString() + " " + json.RootElement.GetProperty("point").GetString();
            counts[key] = (counts.TryGetValue(key, out int seen) ? seen : 0) + 1;
        }
        // 20 requests: 5 of each of GET /products, GET /products/lamp, an approved order, a declined order.
        var expected = new System.Collections.Generic.Dictionary<string, int>
        {
            ["data:all entry"] = 5, ["data:all return"] = 5,
            ["data:find entry"] = 25, ["data:find return"] = 25,          // 5 from the web project, 20 from checkout
            ["orders:place entry"] = 10, ["orders:place return"] = 10,    // web -> services
            ["pricing:quote entry"] = 10, ["pricing:quote return"] = 10,  // within services, through IPricing
            ["payments:charge entry"] = 10, ["payments:charge return"] = 10,
            ["data:save entry"] = 5, ["data:save return"] = 5,            // services -> data
            ["orders:placed fire"] = 5, ["orders:declined fire"] = 5,
        };
        Assert.Equal(expected.OrderBy(e => e.Key), counts.OrderBy(e => e.Key));
        Assert.Equal("{\"events\":140,\"dropped\":0}", summary);

        // The same run without probegen: ProbeGen.OpenTelemetry's AddProbeGen and the standard
        // Prometheus exporter give exactly one call per call on the service's own /metrics.
        string alone = Run(solution, "dotnet", $"\"{dll}\" --requests 20");
        var scraped = new System.Collections.Generic.Dictionary<string, int>();
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(alone, @"/metrics probegen_calls_total\{[^}]*probe_id=""([^""]+)""[^}]*\} (\d+)"))
            scraped[m.Groups[1].Value] = int.Parse(m.Groups[2].Value);
        var calls = expected.Where(e => e.Key.EndsWith(" return") || e.Key.EndsWith(" fire")).ToDictionary(e => e.Key[..e.Key.IndexOf(' ')], e => e.Value);
        Assert.Equal(calls.OrderBy(e => e.Key), scraped.OrderBy(e => e.Key));

        // probegen list on the running service shows each method probe's call sites per project.
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add("http://127.0.0.1:0");
        using Process service = Process.Start(start)!;
        try
        {
            string list = "";
            for (int attempt = 0; attempt < 50 && !list.Contains("payments:charge", StringComparison.Ordinal); attempt++)
            {
                System.Threading.Thread.Sleep(200);
                var (exit, listed) = Shell.Start(output, solution, packed.Probegen, $"list -p {service.Id} --json");
                list = exit == 0 ? listed : "";
            }
            var sites = new System.Collections.Generic.Dictionary<string, string>();
            foreach (string line in list.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                using var json = System.Text.Json.JsonDocument.Parse(line);
                sites[json.RootElement.GetProperty("probe").GetString()!] = json.RootElement.GetProperty("call_sites").GetRawText();
            }
            Assert.Equal("{\"Shop.Web\":1}", sites["data:all"]);
            Assert.Equal("{\"Shop.Services\":1,\"Shop.Web\":1}", sites["data:find"]);
            Assert.Equal("{\"Shop.Web\":1}", sites["orders:place"]);
            Assert.Equal("{\"Shop.Services\":1}", sites["payments:charge"]);
            Assert.Equal("null", sites["orders:placed"]);
        }
        finally
        {
            service.Kill(entireProcessTree: true);
        }
    }

    private string Run(string directory, string file, string arguments, params (string Name, string Value)[] environment) =>
        Shell.Run(output, directory, file, arguments, environment);
}

/// <summary>Runs commands to completion, as a user's shell would.</summary>
internal static class Shell
{
    /// <summary>Runs a command; a non-zero exit fails the test with its output. Returns its stdout.</summary>
    public static string Run(ITestOutputHelper? output, string directory, string file, string arguments, params (string Name, string Value)[] environment)
    {
        var (exitCode, stdout) = Start(output, directory, file, arguments, environment);
        Assert.True(exitCode == 0, $"{file} {arguments} exited with {exitCode}:\n{stdout}");
        return stdout;
    }

    /// <summary>Runs a command that may fail: its exit code, and its stdout (stderr too when it failed).</summary>
    public static (int ExitCode, string Output) Start(ITestOutputHelper? output, string directory, string file, string arguments, params (string Name, string Value)[] environment)
    {
        var start = new ProcessStartInfo(file, arguments)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (name, value) in environment)
            start.Environment[name] = value;
        // A nested dotnet must not inherit the test host's MSBuild state.
        start.Environment.Remove("MSBuildExtensionsPath");
        start.Environment.Remove("MSBUILD_EXE_PATH");
        start.Environment.Remove("MSBuildSDKsPath");
        using Process process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(5)), $"{file} {arguments} did not finish");
        output?.WriteLine($"$ {file} {arguments} -> {process.ExitCode}\n{stdout}\n{stderr.Result}");
        return (process.ExitCode, process.ExitCode == 0 ? stdout : stdout + stderr.Result);
    }
}
