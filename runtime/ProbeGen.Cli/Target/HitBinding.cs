using System.Text.Encodings.Web;
using System.Text.Json;

namespace ProbeGen.Cli.Target;

/// <summary>
/// What a Bind event said about one of the session's probe indexes: the probe and its parameter
/// names, encoded once for the JSON of every hit that follows.
/// </summary>
internal sealed class HitBinding
{
    /// <summary>The escaping every line uses: readable text, as the lines have always been.</summary>
    public static readonly JavaScriptEncoder Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;

    private readonly JsonEncodedText[] _names;

    public HitBinding(string probe, string[] parameters)
    {
        Probe = probe;
        ProbeJson = JsonEncodedText.Encode(probe, Encoder);
        Parameters = parameters;
        _names = new JsonEncodedText[parameters.Length];
        for (int i = 0; i < parameters.Length; i++)
            _names[i] = JsonEncodedText.Encode(parameters[i], Encoder);
    }

    /// <summary>The probe id.</summary>
    public string Probe { get; }

    /// <summary>The probe id as a JSON string value.</summary>
    public JsonEncodedText ProbeJson { get; }

    /// <summary>The parameter names, in order.</summary>
    public string[] Parameters { get; }

    /// <summary>The JSON property name of argument <paramref name="index"/>: its parameter's name, or <c>argN</c> past the declared ones.</summary>
    public JsonEncodedText Name(int index) => index < _names.Length ? _names[index] : JsonEncodedText.Encode("arg" + index, Encoder);
}
