using Lookahead.Fuzz;

namespace Lookahead.Tests;

/// <summary>
/// Every committed fuzz input (tests/fuzz/corpus: seeds, inputs that reached new coverage, and regression
/// inputs of fixed bugs) replayed through its target: each is accepted or refused with the error a user
/// sees, never anything else. The native targets' corpora are replayed under the sanitizers by
/// tests/fuzz/run.sh.
/// </summary>
public class FuzzCorpusTests
{
    public static IEnumerable<string> Targets => FuzzTargetNames.All;

    private static string Corpus(string target) => Path.Combine(AppContext.BaseDirectory, "fuzz-corpus", target);

    [TestCaseSource(nameof(Targets))]
    public void CorpusReplaysWithoutUnexpectedErrors(string target)
    {
        string[] inputs = Directory.GetFiles(Corpus(target));
        Assert.That(inputs, Is.Not.Empty, $"tests/fuzz/corpus/{target} has no inputs");
        int accepted = 0;
        foreach (string input in inputs)
        {
            try
            {
                if (FuzzTargets.Run(target, File.ReadAllBytes(input))) accepted++;
            }
            catch (Exception e)
            {
                Assert.Fail($"{target} input {Path.GetFileName(input)} raised {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        Assert.That(accepted, Is.GreaterThan(0), "at least the seeds are valid inputs, so the target's accepting paths run");
    }
}
