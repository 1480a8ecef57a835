using Microsoft.CodeAnalysis;

namespace ProbeGen.Analyzers;

/// <summary>The ProbeGen and BCL types the rules look for, resolved once per compilation.</summary>
internal sealed class KnownSymbols
{
    private KnownSymbols(Compilation c)
    {
        ProbeHandlerAttribute = c.GetTypeByMetadataName("ProbeGen.ProbeHandlerAttribute");
        ProbeAttribute = c.GetTypeByMetadataName("ProbeGen.ProbeAttribute");
        GeneratedStaticProbeAttribute = c.GetTypeByMetadataName("ProbeGen.GeneratedStaticProbeAttribute");
        IDisposable = c.GetSpecialType(SpecialType.System_IDisposable);
        IAsyncDisposable = c.GetTypeByMetadataName("System.IAsyncDisposable");
        ProbeAttachment = c.GetTypeByMetadataName("ProbeGen.ProbeAttachment");
        ProbeCounter = c.GetTypeByMetadataName("ProbeGen.ProbeCounter");
        ProbeHistogram = c.GetTypeByMetadataName("ProbeGen.ProbeHistogram");
        SrcuDomain = c.GetTypeByMetadataName("ProbeGen.Concurrency.SrcuDomain");
        SrcuReadGuard = c.GetTypeByMetadataName("ProbeGen.Concurrency.SrcuReadGuard");
        Task = c.GetTypeByMetadataName("System.Threading.Tasks.Task");
        TaskOfT = c.GetTypeByMetadataName("System.Threading.Tasks.Task`1");
        ValueTaskOfT = c.GetTypeByMetadataName("System.Threading.Tasks.ValueTask`1");
        Stream = c.GetTypeByMetadataName("System.IO.Stream");
        TextWriter = c.GetTypeByMetadataName("System.IO.TextWriter");
        TextReader = c.GetTypeByMetadataName("System.IO.TextReader");
        WaitHandle = c.GetTypeByMetadataName("System.Threading.WaitHandle");
        Expression = c.GetTypeByMetadataName("System.Linq.Expressions.Expression`1");
    }

    public INamedTypeSymbol? ProbeHandlerAttribute { get; }
    public INamedTypeSymbol? ProbeAttribute { get; }
    public INamedTypeSymbol? GeneratedStaticProbeAttribute { get; }
    public INamedTypeSymbol? IDisposable { get; }
    public INamedTypeSymbol? IAsyncDisposable { get; }
    public INamedTypeSymbol? ProbeAttachment { get; }
    public INamedTypeSymbol? ProbeCounter { get; }
    public INamedTypeSymbol? ProbeHistogram { get; }
    public INamedTypeSymbol? SrcuDomain { get; }
    public INamedTypeSymbol? SrcuReadGuard { get; }
    public INamedTypeSymbol? Task { get; }
    public INamedTypeSymbol? TaskOfT { get; }
    public INamedTypeSymbol? ValueTaskOfT { get; }
    public INamedTypeSymbol? Stream { get; }
    public INamedTypeSymbol? TextWriter { get; }
    public INamedTypeSymbol? TextReader { get; }
    public INamedTypeSymbol? WaitHandle { get; }
    public INamedTypeSymbol? Expression { get; }

    public static KnownSymbols Create(Compilation compilation) => new(compilation);

    /// <summary>True for the ProbeGen types whose Dispose detaches a consumer.</summary>
    public bool IsAttachmentLike(ITypeSymbol? type) =>
        type is not null && (Is(type, ProbeAttachment) || Is(type, ProbeCounter) || Is(type, ProbeHistogram));

    public static bool Is(ITypeSymbol? type, INamedTypeSymbol? known) =>
        known is not null && type is not null && SymbolEqualityComparer.Default.Equals(type.OriginalDefinition, known);

    public static bool DerivesFrom(ITypeSymbol? type, INamedTypeSymbol? known)
    {
        for (ITypeSymbol? t = type; t is not null; t = t.BaseType)
            if (Is(t, known))
                return true;
        return false;
    }

    public bool HasAttribute(ISymbol symbol, INamedTypeSymbol? attribute)
    {
        if (attribute is null)
            return false;
        foreach (AttributeData a in symbol.GetAttributes())
            if (SymbolEqualityComparer.Default.Equals(a.AttributeClass, attribute))
                return true;
        return false;
    }
}
