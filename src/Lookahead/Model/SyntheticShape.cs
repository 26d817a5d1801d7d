namespace Lookahead.Model;

/// <summary>Hyper-parameters of a real model shape, for synthetic (random-weight) model folders.</summary>
public sealed record SyntheticShape(string Name, int VocabSize, int HiddenSize, int IntermediateSize, int NumLayers,
    int NumHeads, int NumKvHeads, int MaxPositionEmbeddings, double RopeTheta, bool TieWordEmbeddings)
{
    internal ModelConfig ToConfig() => new()
    {
        Architecture = "LlamaForCausalLM",
        VocabSize = VocabSize,
        HiddenSize = HiddenSize,
        IntermediateSize = IntermediateSize,
        NumLayers = NumLayers,
        NumHeads = NumHeads,
        NumKvHeads = NumKvHeads,
        HeadDim = HiddenSize / NumHeads,
        MaxPositionEmbeddings = MaxPositionEmbeddings,
        RmsNormEps = 1e-5f,
        RopeTheta = (float)RopeTheta,
        RopeScaling = new RopeScaling(RopeScalingKind.None, 1, 1, 1, 0),
        TieWordEmbeddings = TieWordEmbeddings,
        QkvBias = false,
        BosTokenId = 1,
        EosTokenIds = [2],
    };
}
