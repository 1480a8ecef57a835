using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;

namespace ProbeGen.Generator;

/// <summary>
/// The types the generator compares symbols with, resolved once per compilation instead of by
/// display strings.
/// </summary>
internal sealed class KnownSymbols
{
    private static readonly ConditionalWeakTable<Compilation, KnownSymbols> s_cache = new();

    private KnownSymbols(Compilation compilation)
    {
        Compilation = compilation;
        ProbeAttribute = compilation.GetTypeByMetadataName(Parser.ProbeAttributeName);
        ProbeProviderAttribute = compilation.GetTypeByMetadataName(Parser.ProviderAttributeName);
        GeneratedStaticProbeAttribute = compilation.GetTypeByMetadataName(Parser.GeneratedStaticProbeAttributeName);
        Task = compilation.GetTypeByMetadataName("System.Threading.Tasks.Task");
        TaskOfT = compilation.GetTypeByMetadataName("System.Threading.Tasks.Task`1");
        ValueTask = compilation.GetTypeByMetadataName("System.Threading.Tasks.ValueTask");
        ValueTaskOfT = compilation.GetTypeByMetadataName("System.Threading.Tasks.ValueTask`1");
        Expression = compilation.GetTypeByMetadataName("System.Linq.Expressions.Expression");
        ExpressionOfT = compilation.GetTypeByMetadataName("System.Linq.Expressions.Expression`1");
    }

    public Compilation Compilation { get; }
    public INamedTypeSymbol? ProbeAttribute { get; }
    public INamedTypeSymbol? ProbeProviderAttribute { get; }
    public INamedTypeSymbol? GeneratedStaticProbeAttribute { get; }
    public INamedTypeSymbol? Task { get; }
    public INamedTypeSymbol? TaskOfT { get; }
    public INamedTypeSymbol? ValueTask { get; }
    public INamedTypeSymbol? ValueTaskOfT { get; }
    public INamedTypeSymbol? Expression { get; }
    public INamedTypeSymbol? ExpressionOfT { get; }

    /// <summary>The known symbols of <paramref name="compilation"/>, built on first use.</summary>
    public static KnownSymbols For(Compilation compilation) => s_cache.GetValue(compilation, static c => new KnownSymbols(c));

    public static bool Is(ITypeSymbol? type, INamedTypeSymbol? known) =>
        known is not null && type is not null && SymbolEqualityComparer.Default.Equals(type.OriginalDefinition, known);

    public AttributeData? ProbeAttributeOf(ISymbol symbol) => Find(symbol, ProbeAttribute);

    public bool HasProbeAttribute(ISymbol symbol) => Find(symbol, ProbeAttribute) is not null;

    public static AttributeData? Find(ISymbol symbol, INamedTypeSymbol? attribute)
    {
        if (attribute is null)
            return null;
        foreach (AttributeData a in symbol.GetAttributes())
            if (SymbolEqualityComparer.Default.Equals(a.AttributeClass, attribute))
                return a;
        return null;
    }
}
