namespace Lookahead.Model;

/// <summary>RoPE frequency scaling variants from config.json's rope_scaling.</summary>
public enum RopeScalingKind
{
    /// <summary>Plain RoPE.</summary>
    None,
    /// <summary>Positions divided by a factor ("linear").</summary>
    Linear,
    /// <summary>Llama 3.1 frequency-dependent scaling ("llama3").</summary>
    Llama3,
}
