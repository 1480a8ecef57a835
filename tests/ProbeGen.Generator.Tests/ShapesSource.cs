namespace ProbeGen.Generator.Tests;

/// <summary>A program with a probe of every shape DESIGN.md allows, and scenarios that call them.</summary>
internal static class ShapesSource
{
    public const string Probes = """
        using System;
        using System.Threading.Tasks;
        using ProbeGen;

        namespace Shapes;

        public enum Color { Red, Green }

        public struct Point
        {
            public int X;
            public int Y;
            public override readonly string ToString() => $"({X},{Y})";
        }

        [ProbeProvider("st")]
        public static partial class StaticProbes
        {
            [Probe] public static partial void Values(int i, decimal d, string s, Point p, int? n, string? maybe, Color c);
            [Probe("in_param")] public static partial void WithIn(in Point p, long big);
            [Probe] internal static partial void NoArgs();
        }

        public static partial class Outer
        {
            [ProbeProvider("nested")]
            internal static partial class Inner
            {
                [Probe] public static partial void Deep(byte b);
                [Probe("nested_method")] internal static int Twice(int x) => 2 * x;
            }
        }

        [ProbeProvider("m")]
        public class Calc
        {
            [Probe] public int Add(int a, int b) => a + b;
            [Probe("add_double")] public double Add(double a, double b) => a + b;
            [Probe] public static string Concat(string a, string b = "!", params string[] rest) => a + b + string.Join("", rest);
            [Probe] public void Nothing(int x) { }
            [Probe] public int Fail(int x) => throw new InvalidOperationException("fail " + x);
            [Probe] public T Echo<T>(T value) where T : notnull => value;
            [Probe] public bool TryParse(string s, out int value, ref int calls, in int bias)
            {
                calls++;
                if (int.TryParse(s, out value)) { value += bias; return true; }
                return false;
            }
            [Probe] public async Task<int> SlowAsync(int x) { await Task.Delay(5); return x * 2; }
            [Probe] public async Task FailLaterAsync() { await Task.Yield(); throw new FormatException("later"); }
            [Probe] public Task<int> FailNow(int x) => throw new ArgumentException("now " + x);
            [Probe] public ValueTask<int> FastValue(int x) => new(x + 1);
            [Probe] public async ValueTask<int> SlowValue(int x) { await Task.Yield(); return x + 2; }
            [Probe] public async ValueTask PlainValueTask() { await Task.Yield(); }
            [Probe] public Task PlainTask() => Task.CompletedTask;
            [Probe] public virtual string Virt() => "base";
        }

        public class Derived : Calc
        {
            public override string Virt() => "derived";
        }

        [ProbeProvider("g")]
        public class Box<T>
        {
            private readonly T _value;
            public Box(T value) => _value = value;
            [Probe] public T Get() => _value;
            [Probe] public TOut Map<TOut>(Func<T, TOut> f) => f(_value);
        }

        [ProbeProvider("ext")]
        public static class Ext
        {
            [Probe] public static int Twice(this int x) => x * 2;
        }

        [ProbeProvider("s")]
        public struct Counter
        {
            public int Value;
            [Probe] public int Increment(int by) { Value += by; return Value; }
            [Probe] public readonly int Peek() => Value;
        }

        public interface IGreeter { string Greet(string name); }

        [ProbeProvider("i")]
        public class Greeter : IGreeter
        {
            [Probe] public string Greet(string name) => "hi " + name;
        }
        """;

    public const string Scenarios = """
        using System;
        using System.Runtime.CompilerServices;
        using System.Threading.Tasks;

        namespace Shapes;

        public static class Scenarios
        {
            public static void Statics()
            {
                StaticProbes.Values(7, 19.99m, "ada", new Point { X = 1, Y = 2 }, null, "maybe", Color.Green);
                var p = new Point { X = 3, Y = 4 };
                StaticProbes.WithIn(in p, long.MaxValue);
                StaticProbes.NoArgs();
                Outer.Inner.Deep(255);
                Outer.Inner.Twice(21);
            }

            public static object[] Sync()
            {
                var calc = new Calc();
                return [calc.Add(2, 3), calc.Add(1.5, 2.0), Calc.Concat("a"), Calc.Concat("a", "b", "c", "d")];
            }

            public static void Void() => new Calc().Nothing(5);

            [MethodImpl(MethodImplOptions.NoInlining)]
            public static Exception? Throws()
            {
                try { new Calc().Fail(9); return null; }
                catch (Exception ex) { return ex; }
            }

            public static object[] Generics()
            {
                var calc = new Calc();
                var box = new Box<string>("boxed");
                return [calc.Echo(42), calc.Echo("text"), box.Get(), box.Map(s => s.Length), new Box<int>(5).Get()];
            }

            public static object[] RefOut()
            {
                int calls = 10, bias = 100;
                bool ok = new Calc().TryParse("5", out int value, ref calls, in bias);
                return [ok, value, calls];
            }

            public static async Task<object?[]> Async()
            {
                var calc = new Calc();
                int slow = await calc.SlowAsync(21);
                Exception? later = null, now = null;
                try { await calc.FailLaterAsync(); } catch (Exception ex) { later = ex; }
                try { await calc.FailNow(3); } catch (Exception ex) { now = ex; }
                int fast = await calc.FastValue(1);
                int slowValue = await calc.SlowValue(1);
                await calc.PlainValueTask();
                await calc.PlainTask();
                return [slow, later, now, fast, slowValue];
            }

            public static object[] Receivers()
            {
                var counter = new Counter();
                counter.Increment(2);
                int after = counter.Increment(3);
                int peek = counter.Peek();
                Calc derived = new Derived();
                Calc plain = new Calc();
                return [after, counter.Value, peek, 4.Twice(), Ext.Twice(5), derived.Virt(), plain.Virt()];
            }

            public static string ThroughInterface()
            {
                IGreeter greeter = new Greeter();
                Func<string, string> viaDelegate = new Greeter().Greet;
                return greeter.Greet("x") + "|" + viaDelegate("y") + "|" + new Greeter().Greet("z");
            }
        }
        """;
}
