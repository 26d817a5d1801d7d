using Lookahead.Decoding;
using Lookahead.Model;

namespace Lookahead.Tests;

/// <summary>Per-stage timing through the managed wrapper.</summary>
public class ProfilingTests
{
    // Lookahead on stories260K (CPU) without profiling, then again in `mode`: the context, the first run's
    // tokens and the profiled run.
    private sealed class ProfiledRun : IDisposable
    {
        public LanguageModel Model { get; } = LanguageModel.Load(TestPaths.Stories260K);
        public InferenceContext Context { get; }
        public int[] Plain { get; }
        public GenerationResult Profiled { get; }
        private readonly Generator _generator;

        public ProfiledRun(ProfilingMode mode, string text, int maxTokens)
        {
            Context = Model.CreateContext(new ContextOptions { Backend = Backend.Cpu });
            _generator = new Generator(Context);
            int[] prompt = Model.Tokenizer!.Encode(text);
            var options = new GenerationOptions { Mode = DecodingMode.Lookahead, MaxTokens = maxTokens, StopTokens = [] };
            Plain = _generator.Generate(prompt, options).Tokens;
            Assert.That(Context.Profiling, Is.EqualTo(ProfilingMode.Off));
            Assert.That(Context.GetProfile().Select(s => s.Calls), Is.All.Zero, "nothing is counted while profiling is off");
            Context.Profiling = mode;
            Profiled = _generator.Generate(prompt, options);
        }

        public void Dispose()
        {
            _generator.Dispose();
            Context.Dispose();
            Model.Dispose();
        }
    }

    [Test]
    public void ProfilingCountsEveryStageOfLookaheadStepsAndKeepsTheTokens()
    {
        using var run = new ProfiledRun(ProfilingMode.Stages, "Once upon a time, there was a little girl named Lily. Once upon a time", 60);
        InferenceContext context = run.Context;
        GenerationResult profiled = run.Profiled;
        int[] plain = run.Plain;
        LanguageModel model = run.Model;
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
        using var run = new ProfiledRun(ProfilingMode.Device, "Once upon a time", 30);
        InferenceContext context = run.Context;
        GenerationResult timed = run.Profiled;

        Assert.That(timed.Tokens, Is.EqualTo(run.Plain));
        Assert.That(timed.Stats.DeviceTime, Is.EqualTo(TimeSpan.Zero));
        Assert.That(context.DeviceTime, Is.EqualTo(TimeSpan.Zero));
        Assert.That(context.GetProfile().Select(s => s.Calls), Is.All.Zero);
        Assert.Throws<ArgumentOutOfRangeException>(() => context.Profiling = (ProfilingMode)7);
        Assert.That(context.Profiling, Is.EqualTo(ProfilingMode.Device), "a refused mode leaves the current one");
    }
}
