using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading;
using System.Threading.Tasks;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using ProbeGen.Concurrency;

namespace ProbeGen.Benchmarks;

/// <summary>
/// Without arguments (or with BenchmarkDotNet's own), runs the full suite out of process.
/// With <c>--quick</c>, runs every benchmark once with a short in-process job, measures the
/// grace-period tail by hand, prints one row per DESIGN.md target with its peer from the same
/// run, and writes <c>artifacts/bench/quick.json</c>.
/// </summary>
public static class Program
{
    private static readonly Type[] AllSuites =
    [
        typeof(DisabledProbeBenchmarks), typeof(MethodProbeBenchmarks), typeof(InterfaceProbeBenchmarks), typeof(EnabledProbeBenchmarks),
        typeof(EnabledMethodProbeBenchmarks), typeof(SrcuBenchmarks),
        typeof(RegistryLookupBenchmarks), typeof(SynchronizeBenchmarks), typeof(ObservabilityBenchmarks),
    ];

    public static int Main(string[] args)
    {
        if (args.Length == 2 && args[0] == "--storm")
            return EndToEnd.Storm(args[1]);
        if (!args.Contains("--quick"))
        {
            BenchmarkSwitcher.FromTypes(AllSuites).Run(args);
            return 0;
        }
        if (Debugger.IsAttached || !IsOptimized())
        {
            Console.Error.WriteLine("Run the benchmarks in Release: dotnet run -c Release --project tests/ProbeGen.Benchmarks -- --quick");
            return 2;
        }

        if (args.Contains("--native"))
        {
            // Only the native engine's rows (about a minute): no JSON written, nothing else measured.
            Print(NativeUprobes.Measure(FindRepositoryRoot()));
            return 0;
        }

        if (args.Contains("--streaming"))
        {
            // Only the end-to-end streaming rows (about half a minute): no JSON written.
            Print(EndToEnd.Measure());
            return 0;
        }

        if (args.Contains("--generator"))
        {
            // Only the generator's build cost (under a minute): no JSON written.
            Print(GeneratorCost.Measure(FindRepositoryRoot()).ToList());
            return 0;
        }

        IConfig config = ManualConfig.CreateEmpty()
            .AddJob(Job.Default
                .WithToolchain(InProcessEmitToolchain.Instance)
                .WithWarmupCount(3)
                .WithIterationCount(15)
                .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(150))
                .WithId("quick"))
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddColumnProvider(DefaultColumnProviders.Instance)
            .AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default)
            .WithOptions(ConfigOptions.DisableLogFile | ConfigOptions.JoinSummary);

        if (args.Contains("--observability"))
        {
            // Only the OpenTelemetry rows (a minute or two): no JSON written.
            var observed = new Results(BenchmarkRunner.Run(typeof(ObservabilityBenchmarks), config));
            Print(ObservabilityRows(observed));
            return 0;
        }

        Summary summary = BenchmarkRunner.Run(AllSuites, config).Single();
        var measured = new Results(summary);
        (double Ns, long Bytes) call = measured["EmptyCall_1Thread"];
        (double p50, double p99, int samples) = MeasureSynchronizeUnderReaders();

        var rows = new List<Row>
        {
            Row.Compare("disabled_static_probe", measured["DisabledStaticProbe"], "EventSource.IsEnabled() check", measured["DisabledEventSourceCheck"], "<= 1.1x peer", max: 1.1),
            Row.Absolute("disabled_method_probe_over_direct_call", Over(measured["DisabledMethodProbe"], measured["DirectCall"]), "direct call (same body)", measured["DirectCall"], "<= 1 ns over the direct call", maxNs: 1),
            Row.Absolute("disabled_interface_probe_over_interface_call", Over(measured["DisabledInterfaceProbe"], measured["InterfaceCall"]), "interface call (unprobed twin, 8 types)", measured["InterfaceCall"], "<= 1 ns over a plain interface call", maxNs: 1),
            Row.Compare("enabled_interface_probe_over_enabled_direct", measured["EnabledInterfaceMethodProbe"], "same probe enabled, class-typed call", measured["EnabledDirectMethodProbe"], "<= 1.3x peer (the receiver type test)", max: 1.3),
            Row.Absolute("enabled_typed_hit", measured["EnabledTypedProbe"], "plain delegate call", measured["PlainDelegate"], "<= 5 ns, 0 B", maxNs: 5, requireNoAllocation: true),
            Row.Absolute("enabled_typed_hit_vs_diagnosticsource", measured["EnabledTypedProbe"], "DiagnosticSource.Write", measured["DiagnosticSourceWrite"], "<= 5 ns, 0 B", maxNs: 5, requireNoAllocation: true),
            Row.Absolute("enabled_typed_hit_vs_eventlistener", measured["EnabledTypedProbe"], "EventSource->EventListener", measured["EventSourceToEventListener"], "<= 5 ns, 0 B", maxNs: 5, requireNoAllocation: true),
            Row.Absolute("srcu_enter_exit", Net(measured["Srcu_1Thread"], call), "lock", Net(measured["Lock_1Thread"], call), "<= 2 ns (net of a call)", maxNs: 2),
            Row.Absolute("srcu_enter_exit_vs_rwls", Net(measured["Srcu_1Thread"], call), "ReaderWriterLockSlim read", Net(measured["RwlsRead_1Thread"], call), "<= 2 ns (net of a call)", maxNs: 2),
            new Row("empty_call", call.Ns, null, null, null, "reference: the call every per-call row pays", true, 0),
            Row.Scaling("srcu_2_thread_scaling", measured["Srcu_2Threads"], "srcu 1 thread", measured["Srcu_1Thread"], "throughput >= 1.8x one thread", min: 1.8),
            Row.Info("lock_2_threads", measured["Lock_2Threads"], "lock 1 thread", measured["Lock_1Thread"]),
            Row.Info("rwls_read_2_threads", measured["RwlsRead_2Threads"], "rwls 1 thread", measured["RwlsRead_1Thread"]),
            Row.Compare("registry_lookup_10k_churn", measured["Lookup(Registry)"], "ConcurrentDictionary.TryGetValue", measured["Lookup(ConcurrentDictionary)"], "<= 1.5x peer", max: 1.5),
            Row.Compare("registry_lookup_10k_churn_with_section", measured["Lookup(RegistryWithSection)"], "ConcurrentDictionary.TryGetValue", measured["Lookup(ConcurrentDictionary)"], "<= 1.5x peer (section per lookup)", max: 1.5),
            Row.Compare("registry_lookup_10k_churn_vs_rwls", measured["Lookup(Registry)"], "ReaderWriterLockSlim + SortedDictionary", measured["Lookup(RwlsSortedDictionary)"], "peer >= 3x ours (ratio <= 0.333)", max: 1 / 3.0),
            Row.Absolute("synchronize_no_readers", measured["SynchronizeNoReaders"], null, null, "<= 50 us", maxNs: 50_000),
            new Row("synchronize_readers_p99", p99, "p50 of the same run", p50, p99 / p50, $"bounded (report p99; {samples} samples, 2 readers)", true, 0),
        };

        rows.AddRange(ObservabilityRows(measured));
        rows.AddRange(GeneratorCost.Measure(FindRepositoryRoot()));
        rows.AddRange(EndToEnd.Measure());
        rows.AddRange(NativeUprobes.Measure(FindRepositoryRoot()));
        Print(rows);
        string path = Path.Combine(FindRepositoryRoot(), "artifacts", "bench", "quick.json");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, JsonSerializer.Serialize(rows, RowJson.Default.ListRow));
        Console.WriteLine($"wrote {path}");
        return 0;
    }

    /// <summary>A probed call recorded by AddProbeGen into the real OpenTelemetry SDK, against OpenTelemetry's own instruments and a hand-written activity.</summary>
    private static List<Row> ObservabilityRows(Results measured) =>
    [
        Row.Compare("otel_metric_call_vs_histogram_record", measured["ProbeMetricsCall"], "OTel Histogram<double>.Record, same tag", measured["OtelHistogramRecord"], "<= 0.5x peer", max: 0.5),
        Row.Compare("otel_metric_call_vs_hand_instrumented", measured["ProbeMetricsCall"], "same call + Counter.Add + Histogram.Record", measured["HandInstrumentedCall"], "<= 1.0x peer", max: 1.0),
        Row.Compare("otel_span_call_vs_start_activity", measured["ProbeSpanCall"], "hand-written StartActivity around the call", measured["HandWrittenActivity"], "<= 1.0x peer", max: 1.0),
    ];

    /// <summary>What one measurement costs on top of another.</summary>
    private static (double Ns, long Bytes) Over((double Ns, long Bytes) measured, (double Ns, long Bytes) baseline) =>
        (measured.Ns - baseline.Ns, measured.Bytes);

    /// <summary>A per-call cost less the cost of the call itself.</summary>
    private static (double Ns, long Bytes) Net((double Ns, long Bytes) measured, (double Ns, long Bytes) call) =>
        (Math.Max(0, measured.Ns - call.Ns), measured.Bytes);

    /// <summary>Grace-period latency while a reader thread per core enters and exits continuously.</summary>
    private static (double P50Ns, double P99Ns, int Samples) MeasureSynchronizeUnderReaders()
    {
        var domain = new SrcuDomain("p99 benchmark");
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, Environment.ProcessorCount).Select(_ => Task.Factory.StartNew(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                using (domain.Enter())
                    Thread.SpinWait(50);
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        Thread.Sleep(100);
        var samples = new List<double>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(3) && samples.Count < 2000)
        {
            long start = Stopwatch.GetTimestamp();
            domain.Synchronize();
            samples.Add(Stopwatch.GetElapsedTime(start).TotalNanoseconds);
        }
        stop.Cancel();
        Task.WaitAll(readers);
        samples.Sort();
        return (samples[samples.Count / 2], samples[(int)(samples.Count * 0.99)], samples.Count);
    }

    private static void Print(List<Row> rows)
    {
        Console.WriteLine();
        int width = Math.Max(40, rows.Max(r => r.Name.Length));
        Console.WriteLine($"{"row".PadRight(width)} {"ours",12} {"peer",-42} {"peer ns",10} {"ratio",8}  {"target",-36} meets");
        foreach (Row r in rows)
        {
            Console.WriteLine($"{r.Name.PadRight(width)} {Ns(r.Ns),12} {r.Peer ?? "-",-42} {(r.PeerNs is { } p ? Ns(p) : "-"),10} {(r.Ratio is { } q ? q.ToString("F2") + "x" : "-"),8}  {r.Target,-36} {(r.Meets ? "yes" : "NO")}");
        }
        static string Ns(double ns) => ns >= 10_000 ? $"{ns / 1000:F1} us" : $"{ns:F2} ns";
    }

    private static bool IsOptimized() =>
        typeof(Program).Assembly.GetCustomAttributes(typeof(DebuggableAttribute), false)
            .OfType<DebuggableAttribute>().All(d => !d.IsJITOptimizerDisabled);

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ProbeGen.sln")))
                return dir.FullName;
        return Directory.GetCurrentDirectory();
    }

    /// <summary>Median ns per operation and bytes per operation, by benchmark display name.</summary>
    private sealed class Results
    {
        private readonly Dictionary<string, (double Ns, long Bytes)> _byName = new();

        public Results(Summary summary)
        {
            foreach (BenchmarkReport report in summary.Reports)
            {
                if (report.ResultStatistics is null)
                    continue;
                string name = report.BenchmarkCase.Descriptor.WorkloadMethod.Name;
                if (report.BenchmarkCase.HasParameters)
                    name += "(" + string.Join(",", report.BenchmarkCase.Parameters.Items.Select(p => p.Value)) + ")";
                long bytes = report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase) ?? 0;
                // The median: a 2-core VM has outlier iterations that would drag a mean around.
                _byName[name] = (report.ResultStatistics.Median, bytes);
            }
        }

        public (double Ns, long Bytes) this[string name] =>
            _byName.TryGetValue(name, out var r) ? r : throw new InvalidOperationException($"benchmark '{name}' produced no result");
    }
}

/// <summary>One line of the quick table and of quick.json. Names are stable across runs.</summary>
public sealed record Row(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("ns")] double Ns,
    [property: JsonPropertyName("peer")] string? Peer,
    [property: JsonPropertyName("peer_ns")] double? PeerNs,
    [property: JsonPropertyName("ratio")] double? Ratio,
    [property: JsonPropertyName("target")] string Target,
    [property: JsonPropertyName("meets")] bool Meets,
    [property: JsonPropertyName("bytes")] long Bytes)
{
    public static Row Compare(string name, (double Ns, long Bytes) ours, string peer, (double Ns, long Bytes) theirs, string target, double max)
    {
        double ratio = ours.Ns / theirs.Ns;
        return new Row(name, ours.Ns, peer, theirs.Ns, ratio, target, ratio <= max, ours.Bytes);
    }

    public static Row Absolute(string name, (double Ns, long Bytes) ours, string? peer, (double Ns, long Bytes)? theirs, string target, double maxNs, bool requireNoAllocation = false) =>
        new(name, ours.Ns, peer, theirs?.Ns, theirs is { } t ? ours.Ns / t.Ns : null, target,
            ours.Ns <= maxNs && (!requireNoAllocation || ours.Bytes == 0), ours.Bytes);

    /// <summary>Throughput of N threads over one: ns per op of one thread divided by aggregate ns per op.</summary>
    public static Row Scaling(string name, (double Ns, long Bytes) many, string peer, (double Ns, long Bytes) one, string target, double min)
    {
        double scaling = one.Ns / many.Ns;
        return new Row(name, many.Ns, peer, one.Ns, scaling, target, scaling >= min, many.Bytes);
    }

    public static Row Info(string name, (double Ns, long Bytes) ours, string peer, (double Ns, long Bytes) theirs) =>
        new(name, ours.Ns, peer, theirs.Ns, theirs.Ns / ours.Ns, "informational (throughput vs 1 thread)", true, ours.Bytes);
}

[JsonSerializable(typeof(List<Row>))]
[JsonSourceGenerationOptions(WriteIndented = true)]
internal sealed partial class RowJson : JsonSerializerContext;
