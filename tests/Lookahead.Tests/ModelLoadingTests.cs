using System.Text.Json.Nodes;
using System.Text.Json;
using Lookahead.Model;
using Lookahead.Tests.Fixtures;

namespace Lookahead.Tests;

/// <summary>Loading model folders: every bad input is one clear LookaheadException naming the problem.</summary>
public class ModelLoadingTests
{
    private static RandomModel Fixture(string name, bool sharded = false) =>
        RandomModel.Create(new RandomModelSpec(name, Sharded: sharded, Heads: 4, KvHeads: 2));

    private static void ExpectError(string folder, string fragment)
    {
        var error = Assert.Throws<LookaheadException>(() => LanguageModel.Load(folder).Dispose());
        Assert.That(error!.Message, Does.Contain(fragment));
    }

    private static void EditConfig(string folder, Action<JsonObject> edit)
    {
        string path = Path.Combine(folder, "config.json");
        JsonObject config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(config);
        File.WriteAllText(path, config.ToJsonString());
    }

    [Test]
    public void MissingFolder() => ExpectError("/nonexistent/model", "model folder not found");

    [Test]
    public void MissingConfig()
    {
        using RandomModel fixture = Fixture("no-config");
        File.Delete(Path.Combine(fixture.Folder, "config.json"));
        ExpectError(fixture.Folder, "config.json not found");
    }

    [Test]
    public void ConfigNotJson()
    {
        using RandomModel fixture = Fixture("bad-json");
        File.WriteAllText(Path.Combine(fixture.Folder, "config.json"), "{\"hidden_size\": ");
        ExpectError(fixture.Folder, "config.json is not valid JSON");
    }

    [Test]
    public void UnsupportedArchitecture()
    {
        using RandomModel fixture = Fixture("gpt2");
        EditConfig(fixture.Folder, c => c["architectures"] = new JsonArray("GPT2LMHeadModel"));
        ExpectError(fixture.Folder, "architecture 'GPT2LMHeadModel' is not supported");
    }

    [Test]
    public void MissingAndInvalidFields()
    {
        using RandomModel fixture = Fixture("fields");
        EditConfig(fixture.Folder, c => c.Remove("hidden_size"));
        ExpectError(fixture.Folder, "required field 'hidden_size' is missing");
        EditConfig(fixture.Folder, c => c["hidden_size"] = -4);
        ExpectError(fixture.Folder, "'hidden_size' must be a positive integer");
        EditConfig(fixture.Folder, c => { c["hidden_size"] = 32; c["num_key_value_heads"] = 3; });
        ExpectError(fixture.Folder, "multiple of num_key_value_heads");
        EditConfig(fixture.Folder, c => { c["num_key_value_heads"] = 2; c["hidden_act"] = "gelu"; });
        ExpectError(fixture.Folder, "hidden_act 'gelu' is not supported");
        EditConfig(fixture.Folder, c => { c["hidden_act"] = "silu"; c["rope_scaling"] = new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4 }; });
        ExpectError(fixture.Folder, "rope_scaling type 'yarn' is not supported");
    }

    [Test]
    public void NoWeightsFile()
    {
        using RandomModel fixture = Fixture("no-weights");
        File.Delete(Path.Combine(fixture.Folder, "model.safetensors"));
        ExpectError(fixture.Folder, "neither model.safetensors nor model.safetensors.index.json");
    }

    [Test]
    public void TensorMissingOrWrongShapeOrDtype()
    {
        using RandomModel fixture = Fixture("tensors");
        string path = Path.Combine(fixture.Folder, "model.safetensors");
        Dictionary<string, (TensorDtype, long[], byte[])> tensors;
        using (SafeTensorsFile file = SafeTensorsFile.Open(path))
            tensors = file.Tensors.Values.ToDictionary(t => t.Name, t => (t.Dtype, t.Shape, file.GetSpan(t).ToArray()));

        void Rewrite(Func<string, (TensorDtype Dtype, long[] Shape, byte[] Data), (TensorDtype, long[], byte[])?> change)
        {
            var writer = new SafeTensorsWriter();
            foreach ((string name, var tensor) in tensors)
                if (change(name, tensor) is var (dtype, shape, data)) writer.Add(name, dtype, shape, data);
            writer.Write(path);
        }

        Rewrite((name, t) => name == "model.layers.1.mlp.up_proj.weight" ? null : t);
        ExpectError(fixture.Folder, "tensor 'model.layers.1.mlp.up_proj.weight' is missing");

        Rewrite((name, t) => name == "model.norm.weight" ? (t.Dtype, new long[] { t.Shape[0] / 2, 2 }, t.Data) : t);
        ExpectError(fixture.Folder, "tensor 'model.norm.weight' has shape [16, 2], expected [32]");

        Rewrite((name, t) => name == "model.norm.weight" ? (TensorDtype.I32, t.Shape, t.Data) : t);
        ExpectError(fixture.Folder, "tensor 'model.norm.weight' has dtype I32");
    }

    [Test]
    public void TruncatedWeightsFile()
    {
        using RandomModel fixture = Fixture("truncated");
        string path = Path.Combine(fixture.Folder, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 100)]);
        ExpectError(fixture.Folder, "outside the data section");
    }

    [Test]
    public void ShardedIndexProblems()
    {
        using RandomModel fixture = Fixture("shards", sharded: true);
        using (LanguageModel model = LanguageModel.Load(fixture.Folder))
            Assert.That(model.ParameterCount, Is.GreaterThan(0));

        string index = Path.Combine(fixture.Folder, "model.safetensors.index.json");
        JsonObject original = JsonNode.Parse(File.ReadAllText(index))!.AsObject();
        JsonObject escaped = original.DeepClone().AsObject();
        escaped["weight_map"]!["model.norm.weight"] = "../elsewhere.safetensors";
        File.WriteAllText(index, escaped.ToJsonString());
        ExpectError(fixture.Folder, "must be a file name inside the model folder");

        File.WriteAllText(index, original.ToJsonString());
        File.Delete(Path.Combine(fixture.Folder, "model-00002-of-00002.safetensors"));
        ExpectError(fixture.Folder, "safetensors file not found");
    }

    [Test]
    public void InfoOfStories260K()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        Assert.That(model.Config.Architecture, Is.EqualTo("LlamaForCausalLM"));
        Assert.That(model.Config.NumKvHeads, Is.EqualTo(4));
        Assert.That(model.Config.TieWordEmbeddings, Is.True);
        Assert.That(model.ParameterCount, Is.EqualTo(260_032));
        Assert.That(model.Tokenizer, Is.Not.Null);
        Assert.That(model.Config.EosTokenIds, Is.EqualTo(new[] { 2 }));
    }

    [Test]
    public void EosListAndLlama3RopeScalingAreRead()
    {
        using var document = JsonDocument.Parse("""
            {"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8,"intermediate_size":16,
             "num_hidden_layers":1,"num_attention_heads":1,"eos_token_id":[5,7],"rope_theta":500000.0,
             "rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
             "original_max_position_embeddings":8192}}
            """);
        ModelConfig config = ModelConfig.Parse(document.RootElement);
        Assert.That(config.EosTokenIds, Is.EqualTo(new[] { 5, 7 }));
        Assert.That(config.NumKvHeads, Is.EqualTo(1));
        float[] frequencies = RopeFrequencies.Compute(config);
        // head_dim 8: base frequencies 1, theta^-0.25, theta^-0.5, theta^-0.75. Wavelengths 2*pi/f are
        // 6.3, 166, 4443 and 118,000: the first two are short (< 8192/4) and kept, the last is long
        // (> 8192) and divided by 8, the third lies in the blend band.
        double theta = 500000;
        Assert.That(frequencies[0], Is.EqualTo(1.0f).Within(1e-6));
        Assert.That(frequencies[1], Is.EqualTo((float)Math.Pow(theta, -0.25)).Within(1e-7));
        Assert.That(frequencies[3], Is.EqualTo((float)(Math.Pow(theta, -0.75) / 8)).Within(1e-9));
        double f2 = Math.Pow(theta, -0.5), smooth = (8192 / (2 * Math.PI / f2) - 1) / 3;
        Assert.That(frequencies[2], Is.EqualTo((float)((1 - smooth) * f2 / 8 + smooth * f2)).Within(1e-8));
    }
}
