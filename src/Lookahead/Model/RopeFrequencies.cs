namespace Lookahead.Model;

/// <summary>RoPE inverse frequencies (head_dim / 2 of them), including the supported scaling variants.</summary>
public static class RopeFrequencies
{
    /// <summary>Computes the inverse frequencies the way Hugging Face transformers does.</summary>
    public static float[] Compute(ModelConfig config)
    {
        int half = config.HeadDim / 2;
        var inverse = new float[half];
        for (int i = 0; i < half; i++)
        {
            // HF evaluates base ** (2i / dim) in float32; float arithmetic here keeps the same rounding.
            float exponent = (float)(2 * i) / config.HeadDim;
            inverse[i] = 1.0f / MathF.Pow(config.RopeTheta, exponent);
        }
        RopeScaling scaling = config.RopeScaling;
        switch (scaling.Kind)
        {
            case RopeScalingKind.Linear:
                for (int i = 0; i < half; i++) inverse[i] = (float)(inverse[i] / scaling.Factor);
                break;
            case RopeScalingKind.Llama3:
                ApplyLlama3(inverse, scaling);
                break;
        }
        return inverse;
    }

    // Llama 3.1: long wavelengths are slowed by the factor, short ones kept, the band between blended.
    private static void ApplyLlama3(float[] inverse, RopeScaling s)
    {
        double lowFreqWavelength = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
        double highFreqWavelength = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
        for (int i = 0; i < inverse.Length; i++)
        {
            double frequency = inverse[i];
            double wavelength = 2 * Math.PI / frequency;
            if (wavelength < highFreqWavelength) continue;
            if (wavelength > lowFreqWavelength)
            {
                inverse[i] = (float)(frequency / s.Factor);
                continue;
            }
            double smooth = (s.OriginalMaxPositionEmbeddings / wavelength - s.LowFreqFactor) /
                            (s.HighFreqFactor - s.LowFreqFactor);
            inverse[i] = (float)((1 - smooth) * frequency / s.Factor + smooth * frequency);
        }
    }
}
