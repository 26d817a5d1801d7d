namespace Lookahead.Model;

/// <summary>Element types a safetensors header may name, and the quantized types GGUF files add.</summary>
public enum TensorDtype
{
    /// <summary>IEEE float32.</summary>
    F32,
    /// <summary>IEEE float16.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>float64 (recognized, not loadable).</summary>
    F64,
    /// <summary>int64 (recognized, not loadable).</summary>
    I64,
    /// <summary>int32 (recognized, not loadable).</summary>
    I32,
    /// <summary>int16 (recognized, not loadable).</summary>
    I16,
    /// <summary>int8 (recognized, not loadable).</summary>
    I8,
    /// <summary>uint8 (recognized, not loadable).</summary>
    U8,
    /// <summary>bool (recognized, not loadable).</summary>
    Bool,
    /// <summary>float8 e4m3 (recognized, not loadable).</summary>
    F8E4M3,
    /// <summary>float8 e5m2 (recognized, not loadable).</summary>
    F8E5M2,
    /// <summary>llama.cpp's Q8_0: blocks of 32 signed bytes and a half scale (GGUF matrices, CPU backend).</summary>
    Q8_0,
    /// <summary>llama.cpp's Q4_0: blocks of 32 nibbles and a half scale (GGUF matrices, CPU backend).</summary>
    Q4_0,
    /// <summary>llama.cpp's Q5_0: blocks of 32 five-bit values and a half scale (GGUF matrices, CPU backend).</summary>
    Q5_0,
    /// <summary>llama.cpp's Q4_K: super-blocks of 256 4-bit values with 6-bit sub-block scales and mins (GGUF matrices, CPU backend).</summary>
    Q4_K,
    /// <summary>llama.cpp's Q5_K: as Q4_K with 5-bit values (GGUF matrices, CPU backend).</summary>
    Q5_K,
    /// <summary>llama.cpp's Q6_K: super-blocks of 256 6-bit values with 8-bit sub-block scales (GGUF matrices, CPU backend).</summary>
    Q6_K,
}
