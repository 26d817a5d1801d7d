using System.Globalization;
using Lookahead.Model.Gguf;

namespace Lookahead.Cli.Commands;

/// <summary>lookahead quantize: a model folder as a GGUF file of a quantized (or float) type.</summary>
internal static class QuantizeCommand
{
    private static readonly Dictionary<string, GgufFileType> Types = new()
    {
        ["q8_0"] = GgufFileType.Q8_0,
        ["q4_k_m"] = GgufFileType.Q4_K_M,
        ["f16"] = GgufFileType.F16,
        ["f32"] = GgufFileType.F32,
    };

    public static int Run(IReadOnlyList<string> args)
    {
        var reader = new ArgumentReader(args, CommandLineTable.Quantize.ValueOptions, CommandLineTable.Quantize.Flags);
        string folder = reader.String("model") ?? throw new UsageException("quantize needs --model DIR");
        string output = reader.String("out") ?? throw new UsageException("quantize needs --out FILE.gguf");
        GgufFileType type = reader.Choice("type", GgufFileType.Q4_K_M, Types);
        if (LanguageModel.IsGguf(folder))
            throw new UsageException($"--model {folder} is a GGUF file: quantize reads a model folder (config.json and safetensors)");
        if (!output.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            throw new UsageException($"--out {output} must end in .gguf (that is how --model tells a GGUF file from a folder)");
        InputPaths.RequireWritableFile(output, "--out");

        var progress = new StderrProgress($"quantizing {Path.GetFileName(Path.GetFullPath(folder))} to {type}");
        string partial = output + ".partial";
        try
        {
            GgufWriter.Write(folder, partial, type, progress);
            File.Move(partial, output, overwrite: true);
        }
        finally
        {
            File.Delete(partial);
        }
        progress.Finish();
        // Loading the file back checks it as every later load will.
        using LanguageModel model = LanguageModel.Load(output);
        long bytes = new FileInfo(output).Length;
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {output}: {type}, {bytes / (1024.0 * 1024):F1} MiB ({bytes * 8.0 / Math.Max(1, model.ParameterCount):F2} bits per parameter)"));
        return 0;
    }
}
