using System;
using Xunit;

namespace ProbeGen.Tests;

public class ConsumerTests
{
    [Theory]
    [InlineData(-5, 0)]
    [InlineData(0, 1)]
    [InlineData(1, 2)]
    [InlineData(2, 3)]
    [InlineData(3, 3)]
    [InlineData(4, 4)]
    [InlineData(1023, 11)]
    [InlineData(1024, 12)]
    [InlineData(long.MaxValue, 64)]
    public void Log2BucketsMatchBpftrace(long value, int bucket)
    {
        Assert.Equal(bucket, Log2Histogram.BucketOf(value));
        if (bucket >= 1)
            Assert.InRange(value, Log2Histogram.LowerBound(bucket), bucket == 64 ? long.MaxValue : Log2Histogram.LowerBound(bucket + 1) - 1);
    }

    [Fact]
    public void HistogramRendersLikeBpftrace()
    {
        var h = new Log2Histogram();
        foreach (long v in new long[] { 0, 1, 2, 3, 1024, 1500 })
            h.Record(v);
        string text = h.Render(width: 10);
        string[] lines = text.TrimEnd().Split(Environment.NewLine);
        Assert.Equal("[0]                         1 |@@@@@     |", lines[0]);
        Assert.StartsWith("[2, 4)", lines[2]);
        Assert.Contains("|@@@@@@@@@@|", lines[2]);
        Assert.StartsWith("[1K, 2K)", lines[^1]);
        Assert.Equal(6, h.Count);
    }

    [Fact]
    public void HistogramOfANumericArgument()
    {
        string provider = TestSites.UniqueProvider("hist");
        var site = TestSites.Static<ProbeArgs<string, int>>(provider, "sized", new("name", "string"), new("bytes", "int"));
        using var histogram = Probes.Histogram(provider + ":*", "bytes");
        foreach (int size in new[] { 1, 5, 6, 7, 100 })
            site.Fire(new ProbeArgs<string, int>("x", size));
        var (probe, h) = Assert.Single(histogram.ByProbe);
        Assert.Equal(provider + ":sized", probe.Id);
        Assert.Equal(5, h.Count);
        Assert.Equal(3, h[Log2Histogram.BucketOf(5)]);
        Assert.Contains("@" + provider + ":sized bytes:", histogram.Render());
    }

    [Fact]
    public void HistogramOfLatencySeesOnlyReturns()
    {
        string provider = TestSites.UniqueProvider("latency");
        var site = TestSites.Method<ProbeArgs, NoResult>(provider, "op", null);
        using var histogram = Probes.Histogram(provider + ":op");
        for (int i = 0; i < 4; i++)
        {
            long start = site.Entry(default);
            site.Return(default, default, start);
        }
        var (_, h) = Assert.Single(histogram.ByProbe);
        Assert.Equal(4, h.Count);
        Assert.Equal(0, histogram.Skipped);
    }

    [Fact]
    public void HistogramSkipsMissingOrNonNumericArguments()
    {
        string provider = TestSites.UniqueProvider("skip");
        var site = TestSites.Static<ProbeArgs<string>>(provider, "named", new ProbeParameter("name", "string"));
        using var byText = Probes.Histogram(provider + ":*", "name");
        using var missing = Probes.Histogram(provider + ":*", "nope");
        site.Fire(new ProbeArgs<string>("abc"));
        Assert.Equal(1, byText.Skipped);
        Assert.Equal(1, missing.Skipped);
    }
}
