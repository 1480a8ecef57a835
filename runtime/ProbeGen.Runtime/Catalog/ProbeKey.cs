using System;
using System.Collections.Generic;

namespace ProbeGen;

/// <summary>
/// The registry key of a managed probe site: its id, then a registration serial that keeps two
/// assemblies' probes with the same id apart. Ordered by id (ordinal), so a provider's probes are
/// one contiguous range.
/// </summary>
/// <param name="Id">The probe id, <c>provider:name</c>.</param>
/// <param name="Serial">A process-wide serial assigned when the site was created.</param>
public readonly record struct ProbeKey(string Id, long Serial)
{
    /// <summary>Orders and hashes keys: ordinal on <see cref="Id"/>, then <see cref="Serial"/>.</summary>
    public static KeyComparer Comparer { get; } = new();

    /// <summary>The smallest key with <paramref name="id"/>.</summary>
    public static ProbeKey First(string id) => new(id, long.MinValue);

    /// <summary>Orders keys by id (ordinal), then serial.</summary>
    public sealed class KeyComparer : IComparer<ProbeKey>, IEqualityComparer<ProbeKey>
    {
        /// <inheritdoc />
        public int Compare(ProbeKey x, ProbeKey y)
        {
            int byId = string.CompareOrdinal(x.Id, y.Id);
            return byId != 0 ? byId : x.Serial.CompareTo(y.Serial);
        }

        /// <inheritdoc />
        public bool Equals(ProbeKey x, ProbeKey y) => x.Serial == y.Serial && string.Equals(x.Id, y.Id, StringComparison.Ordinal);

        /// <inheritdoc />
        public int GetHashCode(ProbeKey key) => HashCode.Combine(key.Id, key.Serial);
    }
}
