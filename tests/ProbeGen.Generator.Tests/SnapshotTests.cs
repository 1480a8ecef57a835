using System;
using System.IO;
using Xunit;

namespace ProbeGen.Generator.Tests;

/// <summary>
/// The generated source for representative shapes, compared with the files in Snapshots/. After an
/// intended change, run the tests with PROBEGEN_UPDATE_SNAPSHOTS=1 and review the diff.
/// </summary>
public class SnapshotTests
{
    [Theory]
    [InlineData("Shapes_StaticProbes.Probes.g.cs")]
    [InlineData("Shapes_Calc.Probes.g.cs")]
    [InlineData("Shapes_Box_T_.Probes.g.cs")]
    [InlineData("Shapes_Counter.Probes.g.cs")]
    [InlineData("ProbeGen.Interceptors.g.cs")]
    [InlineData("ProbeGen.Registration.g.cs")]
    public void GeneratedSourceMatchesTheSnapshot(string file)
    {
        var (_, _, result) = Harness.Run("Shapes", ShapesSource.Probes, ShapesSource.Scenarios);
        string actual = Harness.GeneratedSource(result, file).Replace("\r\n", "\n");
        string path = Path.Combine(SnapshotDirectory(), file);
        // Snapshots are written only when asked; a missing one fails, so a run that lost its
        // snapshots can never pass by writing what it produced.
        if (Environment.GetEnvironmentVariable("PROBEGEN_UPDATE_SNAPSHOTS") == "1")
        {
            File.WriteAllText(path, actual);
            return;
        }
        Assert.True(File.Exists(path), $"snapshot {file} is missing; run the tests with PROBEGEN_UPDATE_SNAPSHOTS=1 to write it, and review it");
        Assert.Equal(File.ReadAllText(path).Replace("\r\n", "\n"), actual);
    }

    private static string SnapshotDirectory() =>
        Path.Combine(Harness.RepositoryRoot(), "tests", "ProbeGen.Generator.Tests", "Snapshots");
}
