using System.Collections.Generic;
using System.Linq;
using Microsoft.CodeAnalysis;

namespace ProbeGen.Analyzers;

/// <summary>
/// The method probes a compilation can reach, in its own source and in referenced assemblies built
/// with ProbeGen, by every member a call may name to reach them (the method itself, what it
/// overrides, what it implements). The same rule the generator uses to intercept calls, so the
/// analyzer warns exactly about the calls no interceptor can reach. Built once per compilation, on
/// first use.
/// </summary>
internal sealed class ProbeIndex
{
    private const string RuntimeAssemblyName = "ProbeGen.Runtime";
    private readonly Dictionary<IMethodSymbol, List<IMethodSymbol>> _byMember = new(SymbolEqualityComparer.Default);

    public ProbeIndex(Compilation compilation, KnownSymbols known)
    {
        IEnumerable<IAssemblySymbol> assemblies = new[] { compilation.Assembly }.Concat(compilation.SourceModule.ReferencedAssemblySymbols
            .Where(a => a.Name != RuntimeAssemblyName && a.Modules.Any(m => m.ReferencedAssemblies.Any(r => r.Name == RuntimeAssemblyName))));
        foreach (IAssemblySymbol assembly in assemblies)
        {
            var stack = new Stack<INamespaceOrTypeSymbol>();
            stack.Push(assembly.GlobalNamespace);
            while (stack.Count > 0)
                foreach (ISymbol member in stack.Pop().GetMembers())
                {
                    if (member is INamespaceOrTypeSymbol nested)
                        stack.Push(nested);
                    else if (member is IMethodSymbol method && IsMethodProbe(method, known))
                        foreach (IMethodSymbol reached in DispatchMembers(method))
                        {
                            if (!_byMember.TryGetValue(reached, out List<IMethodSymbol>? list))
                                _byMember[reached] = list = [];
                            list.Add(method);
                        }
                }
        }
    }

    /// <summary>A method with a body and [Probe]; not a static probe (a partial definition here, a generated body in metadata).</summary>
    public static bool IsMethodProbe(IMethodSymbol method, KnownSymbols known) =>
        !method.IsPartialDefinition && method.PartialDefinitionPart is null && !method.IsAbstract
        && known.HasAttribute(method, known.ProbeAttribute) && !known.HasAttribute(method, known.GeneratedStaticProbeAttribute);

    /// <summary>
    /// The probe a call of <paramref name="member"/> on a receiver of static type
    /// <paramref name="receiver"/> (null for a static call) may reach, or null.
    /// </summary>
    public IMethodSymbol? Reachable(IMethodSymbol member, ITypeSymbol? receiver)
    {
        if (!_byMember.TryGetValue(member.OriginalDefinition, out List<IMethodSymbol>? probes))
            return null;
        foreach (IMethodSymbol probe in probes)
            if (receiver is null || SymbolEqualityComparer.Default.Equals(probe, member.OriginalDefinition) || Related(receiver, probe.ContainingType))
                return probe;
        return null;
    }

    private static bool Related(ITypeSymbol receiver, INamedTypeSymbol probeType)
    {
        // An unconstrained T reaches object's virtual members of any type, as the framework's own
        // generic code does (a ToString in a collection, a log message): not a call to report.
        if (receiver is ITypeParameterSymbol tp)
            return tp.ConstraintTypes.Any(c => Related(c, probeType));
        ITypeSymbol definition = receiver.OriginalDefinition;
        for (INamedTypeSymbol? t = probeType; t is not null; t = t.BaseType)
            if (SymbolEqualityComparer.Default.Equals(t.OriginalDefinition, definition))
                return true;
        if (probeType.AllInterfaces.Any(i => SymbolEqualityComparer.Default.Equals(i.OriginalDefinition, definition)))
            return true;
        for (ITypeSymbol? t = receiver.BaseType; t is not null; t = t.BaseType)
            if (SymbolEqualityComparer.Default.Equals(t.OriginalDefinition, probeType.OriginalDefinition))
                return true;
        return false;
    }

    private static IEnumerable<IMethodSymbol> DispatchMembers(IMethodSymbol method)
    {
        yield return method.OriginalDefinition;
        for (IMethodSymbol? overridden = method.OverriddenMethod; overridden is not null; overridden = overridden.OverriddenMethod)
            yield return overridden.OriginalDefinition;
        foreach (IMethodSymbol implemented in method.ExplicitInterfaceImplementations)
            yield return implemented.OriginalDefinition;
        INamedTypeSymbol containing = method.ContainingType;
        if (method.IsStatic || containing.TypeKind == TypeKind.Interface)
            yield break;
        foreach (INamedTypeSymbol @interface in containing.AllInterfaces)
            foreach (IMethodSymbol member in @interface.GetMembers().OfType<IMethodSymbol>())
                if (!member.IsStatic && SymbolEqualityComparer.Default.Equals(containing.FindImplementationForInterfaceMember(member), method))
                    yield return member.OriginalDefinition;
    }
}
