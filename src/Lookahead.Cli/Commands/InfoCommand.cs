using Lookahead.Model;

namespace Lookahead.Cli.Commands;

/// <summary>lookahead info: describes a model folder.</summary>
internal static class InfoCommand
{

    public static int Run(IReadOnlyList<string> args)
    {
        var reader = new ArgumentReader(args, CommandLineTable.Info.ValueOptions, CommandLineTable.Info.Flags);
        string folder = ModelArguments.Resolve(reader);
        using LanguageModel model = ModelArguments.Load(folder);
        ModelConfig c = model.Config;
        TextWriter o = Console.Out;
        o.WriteLine($"model:              {model.Folder}");
        o.WriteLine($"architecture:       {c.Architecture}");
        o.WriteLine($"layers:             {c.NumLayers}");
        o.WriteLine($"hidden size:        {c.HiddenSize}");
        o.WriteLine($"intermediate size:  {c.IntermediateSize}");
        o.WriteLine($"attention heads:    {c.NumHeads} query, {c.NumKvHeads} key/value (head dim {c.HeadDim})");
        o.WriteLine($"vocabulary:         {c.VocabSize}");
        o.WriteLine($"max context:        {c.MaxPositionEmbeddings}{(c.SlidingWindow is int w ? $" (sliding window {w})" : "")}");
        o.WriteLine($"rope:               theta {c.RopeTheta}{(c.RopeScaling.Kind == RopeScalingKind.None ? "" : $", {c.RopeScaling.Kind} scaling x{c.RopeScaling.Factor}")}");
        o.WriteLine($"rms norm eps:       {c.RmsNormEps}");
        o.WriteLine($"output head:        {(c.TieWordEmbeddings ? "tied to the token embedding" : "separate")}");
        o.WriteLine($"q/k/v biases:       {(c.QkvBias ? "yes" : "no")}");
        o.WriteLine($"parameters:         {model.ParameterCount:N0}");
        o.WriteLine($"dtypes:             {ModelArguments.DescribeDtypes(model.ParametersByDtype)}");
        o.WriteLine($"tokenizer:          {model.TokenizerStatus}");
        o.WriteLine($"bos / eos ids:      {c.BosTokenId?.ToString() ?? "none"} / {(c.EosTokenIds.Count == 0 ? "none" : string.Join(", ", c.EosTokenIds))}");
        o.WriteLine($"native library:     {LanguageModel.SystemInfo}");
        return 0;
    }
}
