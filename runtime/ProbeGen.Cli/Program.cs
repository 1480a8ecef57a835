using System;

namespace ProbeGen.Cli;

/// <summary>The <c>probegen</c> entry point.</summary>
public static class Program
{
    /// <summary>Runs the command line. Until the verbs exist it says so and exits with 2 (bad usage).</summary>
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("probegen: no verbs yet (ps, list, trace, stats and uprobe are planned); see README.md.");
        return 2;
    }
}
