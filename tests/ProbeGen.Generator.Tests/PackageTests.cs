using System;
using System.Diagnostics;
using System.IO;
using Xunit;
using Xunit.Abstractions;

namespace ProbeGen.Generator.Tests;

/// <summary>
/// Packs the repository into a local feed and builds a fresh project that references only the
/// ProbeGen package, exactly as a user would, then runs it.
/// </summary>
public class PackageTests(ITestOutputHelper output)
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
        string root = Harness.RepositoryRoot();
        string work = Directory.CreateTempSubdirectory("probegen-pack-").FullName;
        try
        {
            string feed = Path.Combine(work, "feed");
            string version = "0.1.0-test" + DateTime.UtcNow.ToString("yyyyMMddHHmmssfff");
            Run(root, "dotnet", $"pack \"{Path.Combine(root, "runtime/ProbeGen.Runtime/ProbeGen.Runtime.csproj")}\" -c Release -o \"{feed}\" -p:Version={version}");
            Assert.True(File.Exists(Path.Combine(feed, $"ProbeGen.{version}.nupkg")));
            Run(root, "dotnet", $"pack \"{Path.Combine(root, "runtime/ProbeGen.Cli/ProbeGen.Cli.csproj")}\" -c Release -o \"{feed}\" -p:Version={version}");

            string app = Path.Combine(work, "app");
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
                    <PackageReference Include="ProbeGen" Version="{version}" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(app, "Program.cs"), App);
            // Only the local feed: the package must bring everything it needs.
            File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="local" value="{feed}" />
                  </packageSources>
                </configuration>
                """);
            // Keep the repository's Directory.Build.props and central versions out of the fresh project.
            File.WriteAllText(Path.Combine(work, "Directory.Build.props"), "<Project />");
            File.WriteAllText(Path.Combine(work, "Directory.Packages.props"), "<Project />");

            string packages = Path.Combine(work, "packages");
            string stdout = Run(app, "dotnet", "run -c Release", ("NUGET_PACKAGES", packages));
            Assert.Contains("sum=5 fired=1 entries=1 returns=1 last=5 probes=2", stdout);

            // The same app under the packed probegen tool, in launch mode, as a user would run it.
            string tools = Path.Combine(work, "tools");
            Run(app, "dotnet", $"tool install --tool-path \"{tools}\" --add-source \"{feed}\" ProbeGen.Cli --version {version}", ("NUGET_PACKAGES", packages));
            string trace = Run(app, Path.Combine(tools, "probegen"), $"trace app:* --json -- dotnet \"{Path.Combine(app, "bin/Release/net10.0/App.dll")}\"");
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
            string build = Run(app, "dotnet", "build -c Release -p:TreatWarningsAsErrors=false", ("NUGET_PACKAGES", packages));
            Assert.Contains("warning PG1001", build);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private string Run(string directory, string file, string arguments, params (string Name, string Value)[] environment)
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
        output.WriteLine($"$ {file} {arguments}\n{stdout}\n{stderr.Result}");
        Assert.True(process.ExitCode == 0, $"{file} {arguments} exited with {process.ExitCode}:\n{stdout}\n{stderr.Result}");
        return stdout;
    }
}
