using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using Xunit;

// Real uprobes, real processes, a 2-core machine: one test at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace ProbeGen.Uprobes.Tests;

/// <summary>Builds samples/native with gcc once, into a folder of its own.</summary>
public sealed class NativeTargets : IDisposable
{
    public NativeTargets()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("probegen-native-").FullName;
        // Readable by every user: the permission tests run the CLI as nobody.
        if (OperatingSystem.IsLinux())
            File.SetUnixFileMode(Directory, (UnixFileMode)0b111_101_101);
        string root = RepositoryRoot();
        using Process build = Process.Start(new ProcessStartInfo("bash", [Path.Combine(root, "samples/native/build.sh"), Directory])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        string errors = build.StandardError.ReadToEnd();
        build.WaitForExit();
        Assert.True(build.ExitCode == 0, "building the native targets failed: " + errors);
        Cli = Path.Combine(root, "artifacts", "bin", "ProbeGen.Cli", new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Name, "probegen.dll");
    }

    public string Directory { get; }

    public string Cli { get; }

    public string this[string name] => Path.Combine(Directory, name);

    /// <summary>
    /// The command that runs the CLI as the unprivileged user nobody. The CLI is copied where
    /// nobody can read it first: a clone may sit under a folder only root may enter.
    /// </summary>
    public string[] CliAsNobody()
    {
        string cli = Path.Combine(Directory, "cli");
        lock (this)
        {
            if (!System.IO.Directory.Exists(cli))
            {
                string built = Path.GetDirectoryName(Cli)!;
                foreach (string file in System.IO.Directory.EnumerateFiles(built, "*", SearchOption.AllDirectories))
                {
                    string copy = Path.Combine(cli, Path.GetRelativePath(built, file));
                    System.IO.Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
                    File.Copy(file, copy);
                }
            }
        }
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=/tmp", "DOTNET_CLI_HOME=/tmp", "dotnet", Path.Combine(cli, "probegen.dll")];
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ProbeGen.sln")))
                return dir.FullName;
        throw new InvalidOperationException("no ProbeGen.sln above the test");
    }

    /// <summary>Runs a target to completion and returns what it printed.</summary>
    public static string RunToEnd(string file, params string[] arguments)
    {
        using Process p = Start(file, arguments);
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(60_000));
        Assert.Equal(0, p.ExitCode);
        return output.Trim();
    }

    /// <summary>Runs a command to completion: its exit code, its stdout lines, and its stderr.</summary>
    public static (int ExitCode, string[] Lines, string Errors) RunToEnd(string[] command)
    {
        using Process p = Start(command[0], command[1..]);
        var errors = p.StandardError.ReadToEndAsync();
        string[] lines = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(p.WaitForExit(60_000));
        return (p.ExitCode, lines, errors.Result);
    }

    public static Process Start(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments)
            start.ArgumentList.Add(a);
        return Process.Start(start)!;
    }
}

/// <summary>Collects hits from a session of either backend.</summary>
public sealed class Collector
{
    public ConcurrentQueue<UprobeHit> Hits { get; } = new();

    /// <summary>When set, a faulty consumer: every hit is collected, then this is thrown.</summary>
    public Exception? Fault { get; init; }

    public void Add(UprobeHit hit)
    {
        Hits.Enqueue(hit);
        if (Fault is not null)
            throw Fault;
    }

    /// <summary>The hits of one probe in the order they happened (perf delivers each CPU's ring in turn; the sort is stable).</summary>
    public List<UprobeHit> Of(string symbol, bool isReturn = false) =>
        Hits.Where(h => h.Spec.Symbol == symbol && h.Spec.Return == isReturn).OrderBy(h => h.TimestampNs).ToList();
}
