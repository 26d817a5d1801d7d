using Lookahead.Batching;
using Lookahead.Drafting;

namespace Lookahead.Tests;

/// <summary>The batch's draft budget fed scripted step times and outcomes (no clocks involved).</summary>
public class BatchDraftBudgetTests
{
    private const int Sequences = 8;
    // A step's forward pass: streaming the weights once, and each node's (a root's or a draft node's) compute.
    // (small enough that an epoch is always EpochSteps steps: see BatchDraftBudget.EpochSeconds)
    private const double WeightSeconds = 1e-4, NodeSeconds = 5e-6;

    // A chain of nodes below a root, each as confident as the trie would make a well-seen n-gram.
    private static void Offer(BatchDraftBudget.Entry entry, int nodes)
    {
        entry.Draft.Reset(1);
        for (int i = 1; i < nodes; i++) entry.Draft.Add(2, i - 1, 0.9f);
    }

    private static List<BatchDraftBudget.Entry> NewEntries() =>
        Enumerable.Range(0, Sequences).Select(_ => new BatchDraftBudget.Entry { Draft = new DraftTree(16), Cap = 16 }).ToList();

    private sealed record Outcome(int DraftedSteps, bool[] DraftedEpochs, double MeanChosenWhenDrafting);

    // Runs epochs of steps: a drafted step builds 8-node drafts (each draft costing hostPerDraft of host time),
    // every draft node accepted with `accept` probability (deterministically: its first round(accept x nodes)).
    private static Outcome Run(BatchDraftBudget budget, List<BatchDraftBudget.Entry> entries, int epochs, double hostPerDraft, double accept)
    {
        int draftedSteps = 0, draftedNodes = 0;
        var draftedEpochs = new bool[epochs];
        Span<int> accepted = stackalloc int[entries.Count];
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            for (int step = 0; step < BatchDraftBudget.EpochSteps; step++)
            {
                bool drafting = budget.BeginStep();
                foreach (BatchDraftBudget.Entry entry in entries) Offer(entry, drafting ? Math.Min(8, budget.BuildLimit) : 1);
                int total = budget.Choose(entries, 256);
                double forward = WeightSeconds + total * NodeSeconds;
                int tokens = 0;
                for (int i = 0; i < entries.Count; i++)
                {
                    accepted[i] = (int)Math.Round(accept * (entries[i].Chosen - 1));
                    tokens += accepted[i] + 1;
                }
                budget.Observe(entries, total, forward, accepted);
                budget.ObserveStep(entries.Count, tokens, forward + (drafting ? hostPerDraft * entries.Count : 0), drafting);
                if (drafting)
                {
                    draftedSteps++;
                    draftedNodes += total;
                    draftedEpochs[epoch] = true;
                }
            }
        }
        return new Outcome(draftedSteps, draftedEpochs, draftedSteps == 0 ? 0 : (double)draftedNodes / draftedSteps / entries.Count);
    }

    [Test]
    public void DraftsThatPayOnTheWholeStepAreBuiltEveryStep()
    {
        // Every node is accepted, draft building costs a node: every epoch drafts, with deep drafts.
        Outcome outcome = Run(new BatchDraftBudget(), NewEntries(), 20, NodeSeconds, 1.0);
        Assert.That(outcome.DraftedEpochs, Is.All.True);
        Assert.That(outcome.MeanChosenWhenDrafting, Is.GreaterThan(4), "nodes per sequence when drafts hold and cost little");
    }

    [Test]
    public void DraftsWhoseHostCostOutweighsTheirTokensStopExceptForProbes()
    {
        // Drafts hold (every node accepted) and the forward pass prices them well, but building a draft costs
        // 40 nodes' time (half a plain step per sequence): every drafted step loses to plain steps. After the first epoch only probes draft,
        // spaced 1, 2, 4, 8, 16, 16 ... plain epochs apart.
        const int epochs = 60;
        Outcome outcome = Run(new BatchDraftBudget(), NewEntries(), epochs, 40 * NodeSeconds, 1.0);
        int[] drafted = Enumerable.Range(0, epochs).Where(e => outcome.DraftedEpochs[e]).ToArray();
        Assert.That(drafted, Is.EqualTo(new[] { 0, 2, 5, 10, 19, 36, 53 }));
    }

    [Test]
    public void DraftsThatStartPayingAgainAreTakenUpAtTheNextProbe()
    {
        var budget = new BatchDraftBudget();
        List<BatchDraftBudget.Entry> entries = NewEntries();
        Run(budget, entries, 20, 40 * NodeSeconds, 1.0);  // drafting off, probes 8 epochs apart by now
        Outcome cheap = Run(budget, entries, 40, NodeSeconds, 1.0);
        int firstDrafted = Array.IndexOf(cheap.DraftedEpochs, true);
        Assert.That(firstDrafted, Is.InRange(0, BatchDraftBudget.LongestPlainRun));
        Assert.That(cheap.DraftedEpochs.Skip(firstDrafted), Is.All.True, "once a probe wins, every epoch drafts");
    }

    [Test]
    public void ANewSequenceStartsFromTheFactorLearnedOverEarlierOnes()
    {
        var budget = new BatchDraftBudget();
        List<BatchDraftBudget.Entry> entries = NewEntries();
        Run(budget, entries, 8, 0, 0.0);  // drafts offered with confidence, never accepted
        var newcomer = new BatchDraftBudget.Entry { Draft = new DraftTree(16), Cap = 16 };
        Offer(newcomer, 8);
        budget.Choose([newcomer], 256);
        Assert.That(newcomer.Factor, Is.LessThan(0.3), "a newcomer does not start from the optimistic initial guess of 0.6");
    }
}
