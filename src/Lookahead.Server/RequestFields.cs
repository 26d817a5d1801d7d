using System.Text.Json;

namespace Lookahead.Server;

/// <summary>
/// Typed reads of a request's JSON object: a field that is absent or null gives null; one of the wrong type or
/// out of range is an <see cref="ApiError"/> (400) naming it. Fields nobody reads are ignored, as OpenAI's API
/// ignores fields it does not know.
/// </summary>
internal readonly struct RequestFields(JsonElement body, string prefix = "")
{
    public JsonElement Body { get; } = body;

    private string Name(string field) => prefix + field;

    public bool TryGet(string field, out JsonElement value)
    {
        if (Body.TryGetProperty(field, out value) && value.ValueKind != JsonValueKind.Null) return true;
        value = default;
        return false;
    }

    public string? String(string field)
    {
        if (!TryGet(field, out JsonElement value)) return null;
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw ApiError.Invalid(Name(field), $"'{Name(field)}' must be a string");
    }

    public bool? Bool(string field)
    {
        if (!TryGet(field, out JsonElement value)) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiError.Invalid(Name(field), $"'{Name(field)}' must be a boolean"),
        };
    }

    public double? Number(string field, double min, double max)
    {
        if (!TryGet(field, out JsonElement value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double number) || !double.IsFinite(number))
            throw ApiError.Invalid(Name(field), $"'{Name(field)}' must be a number");
        if (number < min || number > max)
            throw ApiError.Invalid(Name(field), $"'{Name(field)}' must be in [{min}, {max}], got {number}");
        return number;
    }

    public long? Integer(string field, long min, long max)
    {
        if (!TryGet(field, out JsonElement value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long number))
            throw ApiError.Invalid(Name(field), $"'{Name(field)}' must be an integer");
        if (number < min || number > max)
            throw ApiError.Invalid(Name(field), $"'{Name(field)}' must be in [{min}, {max}], got {number}");
        return number;
    }

    public RequestFields? Object(string field)
    {
        if (!TryGet(field, out JsonElement value)) return null;
        return value.ValueKind == JsonValueKind.Object
            ? new RequestFields(value, Name(field) + ".")
            : throw ApiError.Invalid(Name(field), $"'{Name(field)}' must be an object");
    }

    /// <summary>A field whose only supported value is its default: anything else is refused, not ignored.</summary>
    public void RequireDefault(string field, Func<JsonElement, bool> isDefault, string why)
    {
        if (TryGet(field, out JsonElement value) && !isDefault(value)) throw ApiError.Invalid(Name(field), $"'{Name(field)}': {why}");
    }
}
