using Lookahead.Decoding;
using Lookahead.Model;

namespace Lookahead.Tests;

/// <summary>lookahead synth: complete, loadable, deterministic folders of real shapes.</summary>
public class SyntheticModelTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_root = Path.Combine(Path.GetTempPath(), "lookahead-synth", Guid.NewGuid().ToString("N")));

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private static int[] Greedy(string folder)
    {
        using LanguageModel model = LanguageModel.Load(folder);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu });
        using var generator = new Generator(context);
        return generator.Generate([1, 50, 900], new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 8, StopTokens = [] }).Tokens;
    }

    [Test]
    public void Stories15MShapeLoadsWithTheRealParameterCount()
    {
        string folder = Path.Combine(_root, "s15");
        CliRunner.Result result = CliRunner.Run(["synth", "--shape", "stories15M", "--dtype", "bf16", "--out", folder, "--seed", "3"]);
        Assert.That(result.ExitCode, Is.Zero, result.Stderr);
        Assert.That(result.Stdout, Does.Contain("stories15M shape").And.Contain("BF16"));
        using LanguageModel model = LanguageModel.Load(folder);
        Assert.That(model.ParameterCount, Is.EqualTo(15_191_712));
        Assert.That(model.ParametersByDtype.Keys, Is.EquivalentTo(new[] { TensorDtype.BF16 }));
        Assert.That(model.Config.NumLayers, Is.EqualTo(6));
        Assert.That(model.Config.TieWordEmbeddings, Is.True);
        Assert.That(Directory.GetFiles(folder, "*.partial"), Is.Empty);
    }

    // models/shapes.tsv is the one table of shapes: its stories260K row must be the bundled model's config,
    // and every shape must be a valid Llama (heads divide the width, kv heads the heads).
    [Test]
    public void TheShapesTableMatchesTheBundledModelAndIsConsistent()
    {
        Assert.That(SyntheticModel.Shapes.Select(s => s.Name),
            Is.EquivalentTo(new[] { "stories260K", "stories15M", "stories110M", "tinyllama-1.1b", "llama2-7b", "llama3-8b" }));
        ModelConfig bundled = ModelConfig.Load(Path.Combine(TestPaths.Stories260K, "config.json"));
        ModelConfig table = SyntheticModel.Find("stories260K").ToConfig();
        Assert.That((table.VocabSize, table.HiddenSize, table.IntermediateSize, table.NumLayers, table.NumHeads, table.NumKvHeads,
                table.MaxPositionEmbeddings, table.RopeTheta, table.TieWordEmbeddings),
            Is.EqualTo((bundled.VocabSize, bundled.HiddenSize, bundled.IntermediateSize, bundled.NumLayers, bundled.NumHeads,
                bundled.NumKvHeads, bundled.MaxPositionEmbeddings, bundled.RopeTheta, bundled.TieWordEmbeddings)));
        foreach (SyntheticShape shape in SyntheticModel.Shapes)
        {
            Assert.That(shape.HiddenSize % shape.NumHeads, Is.Zero, shape.Name);
            Assert.That(shape.NumHeads % shape.NumKvHeads, Is.Zero, shape.Name);
        }
    }

    [Test]
    public void ShardedAndSingleFileFoldersHoldTheSameWeights()
    {
        SyntheticShape shape = SyntheticModel.Find("stories15M");
        string single = Path.Combine(_root, "single"), sharded = Path.Combine(_root, "sharded");
        SyntheticModel.Write(shape, TensorDtype.F16, single, seed: 9);
        SyntheticModel.Write(shape, TensorDtype.F16, sharded, seed: 9, progress: null, shardBytes: 8 << 20);
        Assert.That(File.Exists(Path.Combine(sharded, "model.safetensors.index.json")), Is.True);
        Assert.That(Directory.GetFiles(sharded, "model-*-of-*.safetensors").Length, Is.GreaterThan(2));
        Assert.That(Greedy(sharded), Is.EqualTo(Greedy(single)));
        string other = Path.Combine(_root, "other");
        SyntheticModel.Write(shape, TensorDtype.F16, other, seed: 10);
        Assert.That(File.ReadAllBytes(Path.Combine(other, "model.safetensors")), Is.Not.EqualTo(File.ReadAllBytes(Path.Combine(single, "model.safetensors"))));
    }

    [Test]
    public void RefusesBadArguments()
    {
        string busy = Path.Combine(_root, "busy");
        Directory.CreateDirectory(busy);
        File.WriteAllText(Path.Combine(busy, "keep.txt"), "mine");
        CliRunner.Result notEmpty = CliRunner.Run(["synth", "--shape", "stories15M", "--out", busy]);
        Assert.That(notEmpty.ExitCode, Is.EqualTo(1));
        Assert.That(notEmpty.Stderr, Does.Contain("is not empty"));
        Assert.That(Directory.GetFiles(busy), Has.Length.EqualTo(1), "nothing written into a folder that was not empty");
        CliRunner.Result unknown = CliRunner.Run(["synth", "--shape", "gpt5", "--out", Path.Combine(_root, "x")]);
        Assert.That(unknown.ExitCode, Is.EqualTo(1));
        Assert.That(unknown.Stderr, Does.Contain("unknown shape 'gpt5'"));
        CliRunner.Result missing = CliRunner.Run(["synth", "--shape", "stories15M"]);
        Assert.That(missing.ExitCode, Is.EqualTo(2));
        Assert.That(missing.Stderr, Does.Contain("--out"));
    }
}
