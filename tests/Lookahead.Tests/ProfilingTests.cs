using Lookahead.Decoding;
using Lookahead.Model;

namespace Lookahead.Tests;

/// <summary>Per-stage timing through the managed wrapper.</summary>
public class ProfilingTests
{
    [Test]
    public void ProfilingCountsEveryStageOfLookaheadStepsAndKeepsTheTokens()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu });
        using var generator = new Generator(context);
        int[] prompt = model.Tokenizer!.Encode("Once upon a time, there was a little girl named Lily. Once upon a time");
        var options = new GenerationOptions { Mode = DecodingMode.Lookahead, MaxTokens = 60, StopTokens = [] };
        int[] plain = generator.Generate(prompt, options).Tokens;

        Assert.That(context.Profiling, Is.EqualTo(ProfilingMode.Off));
        Assert.That(context.GetProfile().Select(s => s.Calls), Is.All.Zero, "nothing is counted while profiling is off");
        context.Profiling = ProfilingMode.Stages;
        GenerationResult profiled = generator.Generate(prompt, options);
        IReadOnlyList<StageTime> stages = context.GetProfile();

        Assert.That(profiled.Tokens, Is.EqualTo(plain));
        Assert.That(stages.Select(s => s.Name), Is.EqualTo(new[]
        {
            "embed", "attention_inputs", "attention", "attention_output", "feed_forward", "feed_forward_down", "output",
            "verify", "compact", "device",
        }));
        Assert.That(stages[^1].Calls, Is.Zero, "device time is a mode of its own");
        StageTime embed = stages[0], attention = stages[2], verify = stages[7];
        Assert.That(verify.Calls, Is.EqualTo(profiled.Stats.Steps), "one verification per decoding step");
        Assert.That(embed.Calls, Is.GreaterThan(verify.Calls), "prefill runs forward passes too");
        Assert.That(attention.Calls, Is.EqualTo(embed.Calls * model.Config.NumLayers));
        Assert.That(stages.Sum(s => s.Total.TotalSeconds), Is.GreaterThan(0));

        context.Profiling = ProfilingMode.Off;
        Assert.That(context.GetProfile().Select(s => s.Calls), Is.All.Zero, "switching clears the totals");
    }

    [Test]
    public void DeviceTimeCountsNothingOnTheCpuAndKeepsTheTokens()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu });
        using var generator = new Generator(context);
        int[] prompt = model.Tokenizer!.Encode("Once upon a time");
        var options = new GenerationOptions { Mode = DecodingMode.Lookahead, MaxTokens = 30, StopTokens = [] };
        int[] plain = generator.Generate(prompt, options).Tokens;

        context.Profiling = ProfilingMode.Device;
        GenerationResult timed = generator.Generate(prompt, options);

        Assert.That(timed.Tokens, Is.EqualTo(plain));
        Assert.That(timed.Stats.DeviceSeconds, Is.Zero);
        Assert.That(context.DeviceTime, Is.EqualTo(TimeSpan.Zero));
        Assert.That(context.GetProfile().Select(s => s.Calls), Is.All.Zero);
        Assert.Throws<ArgumentOutOfRangeException>(() => context.Profiling = (ProfilingMode)7);
        Assert.That(context.Profiling, Is.EqualTo(ProfilingMode.Device), "a refused mode leaves the current one");
    }
}
