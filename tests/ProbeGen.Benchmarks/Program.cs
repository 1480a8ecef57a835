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
        if (args.Length is 2 or 3 && args[0] == "--storm")
            return EndToEnd.Storm(args[1], args.Length == 3 ? long.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 0);
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

        if (args.Contains("--jump-profile"))
        {
            // Where a jump backend hit's time goes, in this process (seconds): no JSON written.
            Print(JumpTrampolineCost.Measure());
            return 0;
        }

        if (args.Contains("--jump"))
        {
            // Only the jump backend's rows (under a minute): no JSON written.
            Print(NativeUprobes.MeasureJump(FindRepositoryRoot()));
            return 0;
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

        if (args.Contains("--core"))
        {
            // Only the in-process rows of the hit path, SRCU and the registry (a few minutes): no JSON written.
            var core = new Results(BenchmarkRunner.Run(AllSuites.Where(t => t != typeof(ObservabilityBenchmarks)).ToArray(), config).Single());
            Print(CoreRows(core));
            return 0;
        }

        var measured = new Results(BenchmarkRunner.Run(AllSuites, config).Single());
        List<Row> rows = CoreRows(measured);
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

    /// <summary>The rows of the in-process suites: the hit path, SRCU, the registry and grace periods.</summary>
    private static List<Row> CoreRows(Results measured)
    {
        Measured call = measured["EmptyCall_1Thread"];
        (double p50, double p99, double max, int samples) = MeasureSynchronizeUnderReaders();
        return
        [
            Row.Compare("disabled_static_probe", measured["DisabledStaticProbe"], "EventSource.IsEnabled() check", measured["DisabledEventSourceCheck"], "<= 1.1x peer", max: 1.1),
            Row.Overhead("disabled_method_probe_over_direct_call", measured["DisabledMethodProbe"], "direct call (same body)", measured["DirectCall"], maxNs: 1),
            Row.Overhead("disabled_interface_probe_over_interface_call", measured["DisabledInterfaceProbe"], "interface call (unprobed twin, 8 types)", measured["InterfaceCall"], maxNs: 1),
            Row.Compare("enabled_interface_probe_over_enabled_direct", measured["EnabledInterfaceMethodProbe"], "same probe enabled, class-typed call", measured["EnabledDirectMethodProbe"], "<= 1.3x peer (the receiver type test)", max: 1.3),
            Row.Info("enabled_typed_hit", measured["EnabledTypedProbe"], "plain delegate call, same non-inlined handler", measured["PlainDelegate"], "0 B; ratio informational (the floor: one delegate call)", meets: measured["EnabledTypedProbe"].Bytes == 0),
            Row.Compare("enabled_typed_hit_vs_diagnosticsource", measured["EnabledTypedProbe"], "DiagnosticSource.Write, typed payload, same work", measured["DiagnosticSourceWrite"], "<= 0.6x peer, 0 B", max: 0.6, requireNoAllocation: true)
                with { Detail = TypedHitLookupDetail() },
            Row.Compare("enabled_typed_hit_vs_eventlistener", measured["EnabledTypedProbe"], "EventSource->EventListener, same work", measured["EventSourceToEventListener"], "<= 1.0x peer, 0 B", max: 1.0, requireNoAllocation: true),
            Row.CompareNet("srcu_enter_exit", measured["Srcu_1Thread"], "lock", measured["Lock_1Thread"], call, "<= 0.15x peer (each net of a call)", max: 0.15),
            Row.CompareNet("srcu_enter_exit_vs_rwls", measured["Srcu_1Thread"], "ReaderWriterLockSlim read", measured["RwlsRead_1Thread"], call, "informational (each net of a call)", max: null),
            Row.Info("empty_call", call, null, null, "reference: the call every per-call row pays"),
            Row.Scaling("srcu_2_thread_scaling", measured["Srcu_2Threads"], "srcu 1 thread", measured["Srcu_1Thread"], "throughput >= 1.8x one thread", min: 1.8),
            Row.Scaling("lock_2_threads", measured["Lock_2Threads"], "lock 1 thread", measured["Lock_1Thread"], "informational (throughput vs 1 thread)", min: null),
            Row.Scaling("rwls_read_2_threads", measured["RwlsRead_2Threads"], "rwls 1 thread", measured["RwlsRead_1Thread"], "informational (throughput vs 1 thread)", min: null),
            Row.Compare("registry_lookup_10k_churn", measured["Lookup(Registry)"], "ConcurrentDictionary.TryGetValue", measured["Lookup(ConcurrentDictionary)"], "<= 1.5x peer", max: 1.5)
                with { Detail = RetriesDetail() },
            Row.Compare("registry_lookup_10k_churn_with_section", measured["Lookup(RegistryWithSection)"], "ConcurrentDictionary.TryGetValue", measured["Lookup(ConcurrentDictionary)"], "<= 1.2x peer (section per lookup)", max: 1.2)
                with { Detail = RetriesDetail() },
            Row.Compare("registry_lookup_10k_churn_vs_rwls", measured["Lookup(Registry)"], "ReaderWriterLockSlim + SortedDictionary", measured["Lookup(RwlsSortedDictionary)"], "peer >= 3x ours (ratio <= 0.333)", max: 1 / 3.0),
            Row.Absolute("synchronize_no_readers", measured["SynchronizeNoReaders"], "<= 50 us", maxNs: 50_000),
            new Row("synchronize_readers_p99", p99, "p50 of the same run", p50, p99 / p50, "bounded: every grace period ends, max < 1 s (p99 reported)", samples >= 100 && max < 1e9, 0,
                RatioOf: "p99 / p50",
                Detail: FormattableString.Invariant($"{samples} grace periods, max {max / 1e6:F1} ms, readers on all {Environment.ProcessorCount} cores; p50 and p99 are mostly scheduler time slices, the updater shares the cores")),
        ];
    }

    /// <summary>A probed call recorded by AddProbeGen into the real OpenTelemetry SDK, against OpenTelemetry's own instruments and a hand-written activity.</summary>
    private static List<Row> ObservabilityRows(Results measured) =>
    [
        Row.Compare("otel_metric_call_vs_histogram_record", measured["ProbeMetricsCall"], "OTel Histogram<double>.Record, same tag", measured["OtelHistogramRecord"], "<= 0.5x peer", max: 0.5),
        Row.Compare("otel_metric_call_vs_hand_instrumented", measured["ProbeMetricsCall"], "same call + Counter.Add + Histogram.Record", measured["HandInstrumentedCall"], "<= 1.0x peer", max: 1.0),
        Row.Compare("otel_span_call_vs_start_activity", measured["ProbeSpanCall"], "hand-written StartActivity around the call", measured["HandWrittenActivity"], "<= 1.0x peer", max: 1.0),
    ];

    private static string TypedHitLookupDetail() =>
        FormattableString.Invariant($"the stack lookup missed {EnabledProbeBenchmarks.TypedHitLookupMisses} of {EnabledProbeBenchmarks.TypedHits} hits' sections; at the end: {EnabledProbeBenchmarks.TypedHitLookupState}");

    private static string RetriesDetail() =>
        FormattableString.Invariant($"1 lookup in 8 asks for a key being churned; the retry ran {RegistryLookupBenchmarks.RetriesPerMillion:F1} times per million registry lookups");

    /// <summary>Grace-period latency while a reader thread per core enters and exits continuously.</summary>
    private static (double P50Ns, double P99Ns, double MaxNs, int Samples) MeasureSynchronizeUnderReaders()
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
        return (samples[samples.Count / 2], samples[(int)(samples.Count * 0.99)], samples[^1], samples.Count);
    }

    private static void Print(List<Row> rows)
    {
        Console.WriteLine();
        int width = Math.Max(40, rows.Max(r => r.Name.Length));
        Console.WriteLine($"{"row".PadRight(width)} {"ours",12} {"B",5} {"peer",-42} {"peer ns",10} {"B",5} {"ratio",8}  {"target",-36} meets");
        foreach (Row r in rows)
        {
            Console.WriteLine($"{r.Name.PadRight(width)} {Ns(r.Ns),12} {r.Bytes,5} {r.Peer ?? "-",-42} {(r.PeerNs is { } p ? Ns(p) : "-"),10} {(r.PeerBytes?.ToString() ?? "-"),5} {(r.Ratio is { } q ? q.ToString("F2") + "x" : "-"),8}  {r.Target,-36} {(r.Meets switch { true => "yes", false => "NO", null => "info" })}");
            if (r.RatioOf is not null || r.Detail is not null)
                Console.WriteLine($"{"".PadRight(width)}   {(r.RatioOf is null ? "" : $"ratio = {r.RatioOf}")}{(r.RatioOf is not null && r.Detail is not null ? "; " : "")}{r.Detail}");
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
        private readonly Dictionary<string, Measured> _byName = new();

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
                _byName[name] = new Measured(report.ResultStatistics.Median, bytes, report.ResultStatistics.ConfidenceInterval.Margin);
            }
        }

        public Measured this[string name] =>
            _byName.TryGetValue(name, out var r) ? r : throw new InvalidOperationException($"benchmark '{name}' produced no result");
    }
}

/// <summary>A benchmark's median ns per operation, bytes allocated per operation, and the half-width of its 99.9% confidence interval.</summary>
public readonly record struct Measured(double Ns, long Bytes, double Margin);

/// <summary>
/// One line of the quick table and of quick.json. Names are stable across runs. <see cref="RatioOf"/>
/// says what the ratio divides by what; <see cref="Meets"/> is computed from the numbers, or null
/// for a row that is informational.
/// </summary>
public sealed record Row(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("ns")] double Ns,
    [property: JsonPropertyName("peer")] string? Peer,
    [property: JsonPropertyName("peer_ns")] double? PeerNs,
    [property: JsonPropertyName("ratio")] double? Ratio,
    [property: JsonPropertyName("target")] string Target,
    [property: JsonPropertyName("meets")] bool? Meets,
    [property: JsonPropertyName("bytes")] long Bytes,
    [property: JsonPropertyName("peer_bytes")] long? PeerBytes = null,
    [property: JsonPropertyName("ratio_of")] string? RatioOf = null,
    [property: JsonPropertyName("detail")] string? Detail = null)
{
    /// <summary>Ours against a peer doing the same work: ours / peer must be at most <paramref name="max"/>.</summary>
    public static Row Compare(string name, Measured ours, string peer, Measured theirs, string target, double max, bool requireNoAllocation = false)
    {
        double ratio = ours.Ns / theirs.Ns;
        return new Row(name, ours.Ns, peer, theirs.Ns, ratio, target, ratio <= max && (!requireNoAllocation || ours.Bytes == 0), ours.Bytes,
            theirs.Bytes, "ours / peer (medians)");
    }

    /// <summary>
    /// An overhead row: the probed total against the direct total, both in the table. The
    /// overhead (probed minus direct) passes only if, widened by both confidence intervals,
    /// it is still within <paramref name="maxNs"/>: noise cannot pass it.
    /// </summary>
    public static Row Overhead(string name, Measured probed, string peer, Measured direct, double maxNs)
    {
        double overhead = probed.Ns - direct.Ns;
        double worst = overhead + probed.Margin + direct.Margin;
        return new Row(name, probed.Ns, peer, direct.Ns, probed.Ns / direct.Ns,
            FormattableString.Invariant($"<= +{maxNs} ns over the peer (upper bound of the 99.9% CI)"), worst <= maxNs, probed.Bytes,
            direct.Bytes, "probed total / direct total (medians)",
            FormattableString.Invariant($"overhead {overhead:+0.00;-0.00} ns, at most {worst:+0.00;-0.00} ns within the confidence intervals"));
    }

    /// <summary>Ours against a peer, each less the cost of an empty call that both loops pay; informational when <paramref name="max"/> is null.</summary>
    public static Row CompareNet(string name, Measured ours, string peer, Measured theirs, Measured call, string target, double? max)
    {
        double ourNet = ours.Ns - call.Ns, theirNet = theirs.Ns - call.Ns;
        double ratio = ourNet / theirNet;
        return new Row(name, ours.Ns, peer, theirs.Ns, ratio, target, max is { } m ? ratio <= m : null, ours.Bytes, theirs.Bytes,
            "(ours - empty call) / (peer - empty call)",
            FormattableString.Invariant($"net {ourNet:F2} ns vs {theirNet:F2} ns; empty call {call.Ns:F2} ns"));
    }

    /// <summary>An absolute bound with no peer.</summary>
    public static Row Absolute(string name, Measured ours, string target, double maxNs) =>
        new(name, ours.Ns, null, null, null, target, ours.Ns <= maxNs, ours.Bytes);

    /// <summary>Throughput of N threads over one: ns per op of one thread divided by aggregate ns per op. Informational when <paramref name="min"/> is null.</summary>
    public static Row Scaling(string name, Measured many, string peer, Measured one, string target, double? min)
    {
        double scaling = one.Ns / many.Ns;
        return new Row(name, many.Ns, peer, one.Ns, scaling, target, min is { } m ? scaling >= m : null, many.Bytes, one.Bytes,
            "peer ns per op / ours ns per op (throughput gain)");
    }

    /// <summary>A row with no target of its own to meet, or only the one given.</summary>
    public static Row Info(string name, Measured ours, string? peer, Measured? theirs, string target, bool? meets = null) =>
        new(name, ours.Ns, peer, theirs?.Ns, theirs is { } t ? ours.Ns / t.Ns : null, target, meets, ours.Bytes, theirs?.Bytes,
            theirs is null ? null : "ours / peer (medians)");
}

[JsonSerializable(typeof(List<Row>))]
// A row with no measurement (NaN ns) is still written, as "NaN", rather than failing the whole file.
[JsonSourceGenerationOptions(WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
internal sealed partial class RowJson : JsonSerializerContext;
