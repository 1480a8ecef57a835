namespace ProbeGen.Cli;

/// <summary>The exit codes of <c>probegen</c>, as DESIGN.md gives them.</summary>
public enum ExitCode
{
    /// <summary>Done.</summary>
    Ok = 0,

    /// <summary>A failure at run time: no ProbeGen in the process, control refused, the IPC broke.</summary>
    Failure = 1,

    /// <summary>Bad usage or bad input: a bad option, pattern or filter, no such process.</summary>
    Usage = 2,
}

/// <summary>An error a user can anticipate: printed as one line on stderr, with its exit code, and no stack trace.</summary>
public sealed class CliException(string message, ExitCode exitCode) : System.Exception(message)
{
    /// <summary>The exit code to leave with.</summary>
    public ExitCode ExitCode { get; } = exitCode;

    /// <summary>Bad usage or input.</summary>
    public static CliException Usage(string message) => new(message, ExitCode.Usage);

    /// <summary>A run-time failure.</summary>
    public static CliException Failure(string message) => new(message, ExitCode.Failure);
}
