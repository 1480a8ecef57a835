using System;
using System.CommandLine;
using System.Linq;
using ProbeGen.Cli.Commands;

namespace ProbeGen.Cli;

/// <summary>The <c>probegen</c> entry point: composes the commands and turns errors into one line and an exit code.</summary>
public static class Program
{
    /// <summary>Runs the command line.</summary>
    public static int Main(string[] args)
    {
        // Everything after "--" is the command to launch; the parser never sees it.
        int separator = Array.IndexOf(args, "--");
        string[] launch = separator < 0 ? [] : args[(separator + 1)..];
        string[] own = separator < 0 ? args : args[..separator];

        var root = new RootCommand("probegen: list, trace and aggregate ProbeGen probes in a live .NET process.")
        {
            PsCommand.Create(),
            ListCommand.Create(),
            TraceCommand.Create(launch),
            StatsCommand.Create(launch),
        };
        ParseResult parsed = root.Parse(own);
        if (parsed.Errors.Count > 0)
        {
            Console.Error.WriteLine($"probegen: {parsed.Errors[0].Message}");
            return (int)ExitCode.Usage;
        }
        try
        {
            // Our own handler below turns anticipated errors into one line; no stack traces.
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (CliException ex)
        {
            Console.Error.WriteLine($"probegen: {ex.Message}");
            return (int)ex.ExitCode;
        }
    }
}
