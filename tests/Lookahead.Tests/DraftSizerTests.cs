using Lookahead.Decoding;
using Lookahead.Drafting;

namespace Lookahead.Tests;

/// <summary>The adaptive sizer fed scripted timings and outcomes (no clocks involved).</summary>
public class DraftSizerTests
{
    private const double OneNode = 50e-6, TwoNodes = 60e-6;

    private static DraftTree Offer(DraftTree draft, float confidence)
    {
        draft.Reset(1);
        draft.Add(2, 0, confidence);
        return draft;
    }

    [Test]
    public void ASlowStepDoesNotPriceADraftSizeOutForGood()
    {
        var sizer = new DraftSizer();
        var draft = new DraftTree(8);
        Assert.That(sizer.Choose(Offer(draft, 0.9f)), Is.EqualTo(1), "a plain step is timed first");
        sizer.Observe(1, OneNode, 0);
        Assert.That(sizer.Choose(Offer(draft, 0.9f)), Is.EqualTo(2), "a confident draft is worth a second node");
        sizer.Observe(2, 100 * TwoNodes, 1);  // a preempted thread or a pool waking from sleep

        // Two-node steps really cost 1.2x a plain one and their drafts hold: the sizer must come back to them.
        int twoNodeSteps = 0;
        for (int step = 0; step < 4 * DraftSizer.ExploreEvery; step++)
        {
            int size = sizer.Choose(Offer(draft, 0.9f));
            sizer.Observe(size, size == 1 ? OneNode : TwoNodes, size - 1);
            if (step >= 3 * DraftSizer.ExploreEvery && size == 2) twoNodeSteps++;
        }
        Assert.That(twoNodeSteps, Is.EqualTo(DraftSizer.ExploreEvery), "once re-timed, every confident draft is verified");
    }

    // Offers a two-node draft every step for `steps` steps after a timed plain step; drafts never hold and
    // a step of `size` nodes takes seconds(size). Returns how many steps verified the draft.
    private static int DraftStepsWhenNothingHolds(int steps, float confidence, Func<int, double> seconds)
    {
        var sizer = new DraftSizer();
        var draft = new DraftTree(8);
        sizer.Choose(Offer(draft, confidence));
        sizer.Observe(1, seconds(1), 0);
        int tried = 0;
        for (int step = 0; step < steps; step++)
        {
            int size = sizer.Choose(Offer(draft, confidence));
            sizer.Observe(size, seconds(size), 0);
            if (size > 1) tried++;
        }
        return tried;
    }

    [Test]
    public void DeclinedDraftsAreStillTriedNowAndThen()
    {
        // Two nodes cost twice one: declining is right, but not forever.
        int tried = DraftStepsWhenNothingHolds(10 * DraftSizer.ExploreEvery, 0.05f, size => size * OneNode);
        Assert.That(tried, Is.InRange(1, 10 * DraftSizer.ExploreEvery / (DraftSizer.ExploreEvery - 1)));
    }

    [Test]
    public void DraftsThatNeverHoldAreNotVerifiedBecauseTheyTimedCheap()
    {
        // Two-node steps time 10% cheaper than plain ones (noise, or a kernel that suits two inputs): the
        // cheap timing alone must not keep drafts that never hold coming.
        const int steps = 20 * DraftSizer.ExploreEvery;
        int tried = DraftStepsWhenNothingHolds(steps, 0.3f, size => size == 1 ? OneNode : 0.9 * OneNode);
        Assert.That(tried, Is.LessThan(steps / 4), "drafts that never hold stay occasional (before the fix: nearly every step)");
    }

    [Test]
    public void DraftsAreBuiltOnlyAsLargeAsRecentChoicesNeed()
    {
        var sizer = new DraftSizer();
        var draft = new DraftTree(64);
        DraftTree Chain(int nodes)
        {
            draft.Reset(1);
            for (int i = 1; i < nodes; i++) draft.Add(2, i - 1, MathF.Pow(0.95f, i));
            return draft;
        }
        // Every node is accepted and extra nodes are nearly free: sizes grow step by step.
        for (int step = 0; step < 40; step++)
        {
            int size = sizer.Choose(Chain(Math.Min(16, sizer.Limit)));
            sizer.Observe(size, OneNode * (1 + 0.02 * (size - 1)), size - 1);
        }
        Assert.That(sizer.Limit, Is.GreaterThanOrEqualTo(16));

        // Then only two-node drafts are offered: after two periods the limit comes back down.
        for (int step = 0; step < 2 * DraftSizer.RecentSteps; step++)
        {
            int size = sizer.Choose(Chain(2));
            sizer.Observe(size, size == 1 ? OneNode : TwoNodes, size - 1);
        }
        Assert.That(sizer.Limit, Is.EqualTo(4));
    }
}
