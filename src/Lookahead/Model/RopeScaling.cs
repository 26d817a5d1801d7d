namespace Lookahead.Model;

/// <summary>RoPE scaling parameters (only the fields the kind uses are meaningful).</summary>
public sealed record RopeScaling(
    RopeScalingKind Kind,
    double Factor,
    double LowFreqFactor,
    double HighFreqFactor,
    int OriginalMaxPositionEmbeddings);
