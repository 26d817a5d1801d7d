using System.Globalization;
using Lookahead.Model;

namespace Lookahead.Cli.Commands;

/// <summary>lookahead synth: writes a model folder of a real shape with seeded random weights.</summary>
internal static class SynthCommand
{
    private static readonly Dictionary<string, TensorDtype> Dtypes = new()
    {
        ["f32"] = TensorDtype.F32,
        ["f16"] = TensorDtype.F16,
        ["bf16"] = TensorDtype.BF16,
    };


    public static int Run(IReadOnlyList<string> args)
    {
        var reader = new ArgumentReader(args, CommandLineTable.Synth.ValueOptions, CommandLineTable.Synth.Flags);
        string shapeName = reader.String("shape") ?? throw new UsageException(
            $"synth needs --shape ({string.Join(", ", SyntheticModel.Shapes.Select(s => s.Name))})");
        string folder = reader.String("out") ?? throw new UsageException("synth needs --out DIR");
        TensorDtype dtype = reader.Choice("dtype", TensorDtype.BF16, Dtypes);
        int seed = reader.Int("seed", 0, int.MaxValue) ?? 1;
        SyntheticShape shape = SyntheticModel.Find(shapeName);

        var progress = new StderrProgress($"writing {shape.Name}");
        SyntheticModel.Write(shape, dtype, folder, seed, progress);
        progress.Finish();
        long bytes = Directory.EnumerateFiles(folder, "*.safetensors").Sum(f => new FileInfo(f).Length);
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {folder}: {shape.Name} shape, {SafeTensorsWriter.DtypeName(dtype)}, {bytes / (1024.0 * 1024 * 1024):F2} GiB of random weights (seed {seed}); for speed measurements only"));
        return 0;
    }
}
