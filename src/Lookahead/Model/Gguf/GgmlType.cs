namespace Lookahead.Model.Gguf;

/// <summary>ggml tensor types as GGUF files number them (ggml.h's enum ggml_type).</summary>
internal enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
}

/// <summary>Block layouts of the ggml types: a row of a tensor is whole blocks of BlockElements values,
/// BlockBytes bytes each.</summary>
internal static class GgmlTypes
{
    /// <summary>(elements, bytes) of one block, or null for a number this library does not know.</summary>
    public static (int Elements, int Bytes)? Block(GgmlType type) => type switch
    {
        GgmlType.F32 or GgmlType.I32 => (1, 4),
        GgmlType.F16 or GgmlType.BF16 or GgmlType.I16 => (1, 2),
        GgmlType.I8 => (1, 1),
        GgmlType.I64 or GgmlType.F64 => (1, 8),
        GgmlType.Q4_0 => (32, 18),
        GgmlType.Q4_1 => (32, 20),
        GgmlType.Q5_0 => (32, 22),
        GgmlType.Q5_1 => (32, 24),
        GgmlType.Q8_0 => (32, 34),
        GgmlType.Q8_1 => (32, 36),
        GgmlType.Q2_K => (256, 84),
        GgmlType.Q3_K => (256, 110),
        GgmlType.Q4_K => (256, 144),
        GgmlType.Q5_K => (256, 176),
        GgmlType.Q6_K => (256, 210),
        GgmlType.Q8_K => (256, 292),
        GgmlType.IQ2_XXS => (256, 66),
        GgmlType.IQ2_XS => (256, 74),
        GgmlType.IQ3_XXS => (256, 98),
        GgmlType.IQ1_S => (256, 50),
        GgmlType.IQ4_NL => (32, 18),
        GgmlType.IQ3_S => (256, 110),
        GgmlType.IQ2_S => (256, 82),
        GgmlType.IQ4_XS => (256, 136),
        GgmlType.IQ1_M => (256, 56),
        GgmlType.TQ1_0 => (256, 54),
        GgmlType.TQ2_0 => (256, 66),
        _ => null,
    };

    /// <summary>The element type the engine loads a tensor of this type as (quantized types: matrices
    /// only), or null for one it does not load.</summary>
    public static TensorDtype? Loadable(GgmlType type) => type switch
    {
        GgmlType.F32 => TensorDtype.F32,
        GgmlType.F16 => TensorDtype.F16,
        GgmlType.BF16 => TensorDtype.BF16,
        GgmlType.Q8_0 => TensorDtype.Q8_0,
        GgmlType.Q4_0 => TensorDtype.Q4_0,
        GgmlType.Q5_0 => TensorDtype.Q5_0,
        GgmlType.Q4_K => TensorDtype.Q4_K,
        GgmlType.Q5_K => TensorDtype.Q5_K,
        GgmlType.Q6_K => TensorDtype.Q6_K,
        _ => null,
    };

    /// <summary>Whether a type is one of llama.cpp's block-quantized formats.</summary>
    public static bool IsQuantized(GgmlType type) => Block(type) is { Elements: > 1 };

    /// <summary>The type's name as llama.cpp prints it (e.g. Q4_K), or its number for an unknown one.</summary>
    public static string Name(GgmlType type) => Enum.IsDefined(type) ? type.ToString() : $"type {(uint)type}";
}
