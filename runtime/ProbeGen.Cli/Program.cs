using System;
using System.CommandLine;
using System.Linq;
using ProbeGen.Cli.Commands;

namespace ProbeGen.Cli;

/// <summary>The <c>probegen</c> entry point: composes the commands and turns errors into one line and an exit code.</summary>
public static class Program
{
    private static bool IsBrokenPipe()
    {
        try
        {
            Console.Out.Flush();
            return false;
        }
        catch (System.IO.IOException)
        {
            return true;
        }
    }

    /// <summary>Runs the command line.</summary>
    public static int Main(string[] args)
    {
        NativeAllocator.Tune();
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
            MetricsCommand.Create(launch),
            UprobeCommand.Create(launch),
        };
        ParseResult parsed = root.Parse(own);
        if (parsed.Errors.Count > 0)
        {
            Console.Error.WriteLine($"probegen: {parsed.Errors[0].Message}");
            return (int)ExitCode.Usage;
        }
        // Ctrl-C and SIGTERM stop a trace cleanly: it drains, prints its summary and exits 0.
        using var stop = new System.Threading.CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        try
        {
            // Our own handlers: anticipated errors become one line (no stack trace), and signals
            // cancel the command rather than end the process with 130.
            var configuration = new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
            return parsed.InvokeAsync(configuration, stop.Token).GetAwaiter().GetResult();
        }
        catch (CliException ex)
        {
            Console.Error.WriteLine($"probegen: {ex.Message}");
            return (int)ex.ExitCode;
        }
        catch (System.IO.IOException) when (IsBrokenPipe())
        {
            // Whoever read our output (| head) has gone: nothing left to say to anyone.
            return (int)ExitCode.Ok;
        }
    }
}
