using Lookahead.Drafting;

namespace Lookahead.Tests;

/// <summary>The trie against a brute-force oracle of n-gram counts, its limits, and its file format.</summary>
public class TokenTrieTests
{
    private const int Window = 4;

    /// <summary>Dictionary of n-gram counts with the trie's documented semantics.</summary>
    private sealed class Oracle(ISet<int> stops)
    {
        public readonly Dictionary<string, (int Output, int Prompt)> Counts = new();
        private readonly List<int> _history = [];

        private static string Key(IEnumerable<int> tokens) => string.Join(",", tokens);

        private void Bump(IEnumerable<int> path, bool prompt)
        {
            string key = Key(path);
            Counts.TryGetValue(key, out var c);
            Counts[key] = prompt ? (c.Output, c.Prompt + 1) : (c.Output + 1, c.Prompt);
        }

        public void BeginRequest(int[] prompt)
        {
            ClearPrompt();
            _history.Clear();
            for (int s = 0; s < prompt.Length; s++)
            {
                if (stops.Contains(prompt[s])) continue;
                for (int e = s + 1; e <= Math.Min(prompt.Length, s + Window); e++) Bump(prompt[s..e], prompt: true);
            }
        }

        public void EndRequest()
        {
            ClearPrompt();
            _history.Clear();
        }

        public void Append(int token)
        {
            _history.Add(token);
            int p = _history.Count - 1;
            for (int s = Math.Max(0, p - Window + 1); s <= p; s++)
                if (!stops.Contains(_history[s])) Bump(_history.Skip(s).Take(p - s + 1), prompt: false);
        }

        public void Squeeze()
        {
            foreach (string key in Counts.Keys.ToList())
                Counts[key] = (Counts[key].Output / 2, Counts[key].Prompt);
            var dead = Counts.Where(c => c.Value.Output == 0 && c.Value.Prompt == 0).Select(c => c.Key).ToList();
            foreach (string key in Counts.Keys.ToList())
                if (dead.Any(d => key == d || key.StartsWith(d + ",", StringComparison.Ordinal))) Counts.Remove(key);
        }

        private void ClearPrompt()
        {
            foreach (string key in Counts.Keys.ToList()) Counts[key] = (Counts[key].Output, 0);
            foreach (string key in Counts.Where(c => c.Value == (0, 0)).Select(c => c.Key).ToList()) Counts.Remove(key);
        }
    }

    private static void AssertSame(TokenTrie trie, Oracle oracle, string when)
    {
        foreach ((string key, (int output, int prompt)) in oracle.Counts)
        {
            int[] tokens = key.Split(',').Select(int.Parse).ToArray();
            int node = trie.Find(tokens);
            Assert.That(node, Is.GreaterThanOrEqualTo(0), $"{when}: n-gram [{key}] missing");
            Assert.That(trie.Frequency(node, FrequencySource.Output), Is.EqualTo(output), $"{when}: output count of [{key}]");
            Assert.That(trie.Frequency(node, FrequencySource.Input), Is.EqualTo(prompt), $"{when}: prompt count of [{key}]");
            Assert.That(trie.Frequency(node, FrequencySource.Mix), Is.EqualTo(output + prompt), $"{when}: mixed count of [{key}]");
        }
        // Nothing with a count that the oracle does not know (zero-count nodes may linger until a squeeze).
        int counted = CountedNodes(trie, out List<string> paths);
        Assert.That(counted, Is.EqualTo(oracle.Counts.Count),
            $"{when}: unexpected n-grams {string.Join(" ", paths.Except(oracle.Counts.Keys).Take(5))}");
    }

    private static int CountedNodes(TokenTrie trie, out List<string> paths)
    {
        paths = [];
        var stack = new Stack<(int Node, string Path)>();
        for (int token = 0; token < 64; token++)
        {
            int root = trie.Find([token]);
            if (root >= 0) stack.Push((root, token.ToString()));
        }
        while (stack.Count > 0)
        {
            (int node, string path) = stack.Pop();
            if (trie.Frequency(node, FrequencySource.Mix) > 0) paths.Add(path);
            for (int child = trie.FirstChild(node); child >= 0; child = trie.NextSibling(child))
                stack.Push((child, path + "," + trie.TokenOf(child)));
        }
        return paths.Count;
    }

    [Test]
    public void RandomInsertQuerySqueezeMatchesOracle()
    {
        var stops = new HashSet<int> { 0, 5 };
        for (int seed = 0; seed < 20; seed++)
        {
            var random = new Random(seed);
            using var trie = new TokenTrie(new TrieOptions { WindowLength = Window, StopTokens = stops });
            var oracle = new Oracle(stops);
            int vocab = 3 + seed % 10;
            for (int request = 0; request < 6; request++)
            {
                int[] prompt = Enumerable.Range(0, random.Next(0, 25)).Select(_ => random.Next(vocab)).ToArray();
                trie.BeginRequest(prompt);
                oracle.BeginRequest(prompt);
                AssertSame(trie, oracle, $"seed {seed} request {request} after prompt");
                int outputs = random.Next(0, 40);
                for (int i = 0; i < outputs; i++)
                {
                    int token = random.Next(vocab);
                    trie.AppendOutput([token]);
                    oracle.Append(token);
                    if (random.Next(15) == 0)
                    {
                        trie.Squeeze();
                        oracle.Squeeze();
                        AssertSame(trie, oracle, $"seed {seed} request {request} after squeeze");
                    }
                }
                AssertSame(trie, oracle, $"seed {seed} request {request} after output");
                trie.EndRequest();
                oracle.EndRequest();
                AssertSame(trie, oracle, $"seed {seed} request {request} after end");
            }
        }
    }

    [Test]
    public void DraftsAreBestFirstSubtreesOfMatchedNgrams()
    {
        var random = new Random(7);
        using var trie = new TokenTrie(new TrieOptions { WindowLength = 6 });
        for (int i = 0; i < 30; i++) trie.AddOutputCorpus(Enumerable.Range(0, 60).Select(_ => random.Next(6)).ToArray());
        foreach (DraftMode mode in Enum.GetValues<DraftMode>())
        foreach (int decodingLength in new[] { 1, 2, 5, 17, 64 })
        foreach (int branchLength in new[] { 1, 3, 5 })
        {
            var builder = new DraftBuilder(new DraftOptions { Mode = mode, DecodingLength = decodingLength, BranchLength = branchLength, Frequency = FrequencySource.Output });
            var draft = new DraftTree(decodingLength);
            for (int trial = 0; trial < 20; trial++)
            {
                int[] context = Enumerable.Range(0, 3).Select(_ => random.Next(6)).ToArray();
                builder.Build(trie, context, draft);
                string what = $"{mode} dl {decodingLength} bl {branchLength} context [{string.Join(",", context)}]";
                Assert.That(draft.Count, Is.InRange(1, decodingLength), what);
                Assert.That(draft.Tokens[0], Is.EqualTo(context[^1]), what);
                int[] match = context[^2..];  // the 2-token query exists: every window of 6 covers it
                bool found = trie.Find(match) >= 0;
                if (!found) match = context[^1..];
                for (int i = 1; i < draft.Count; i++)
                {
                    Assert.That(draft.Parents[i], Is.InRange(0, i - 1), what);
                    Assert.That(draft.Depths[i], Is.InRange(1, branchLength), what);
                    var path = new List<int>();
                    for (int n = i; n > 0; n = draft.Parents[n]) path.Insert(0, draft.Tokens[n]);
                    int node = trie.Find([.. match, .. path]);
                    if (node < 0) node = trie.Find([context[^1], .. path]);  // fell back to the shorter match
                    Assert.That(node, Is.GreaterThanOrEqualTo(0), $"{what}: node {i} is not an n-gram in the trie");
                    Assert.That(trie.Frequency(node, FrequencySource.Output), Is.Positive, what);
                }
                if (mode == DraftMode.Single)
                    for (int i = 1; i < draft.Count; i++) Assert.That(draft.Parents[i], Is.EqualTo(i - 1), what);
                if (mode == DraftMode.Hierarchical)
                {
                    var seen = new HashSet<(int, int)>();
                    for (int i = 1; i < draft.Count; i++)
                        Assert.That(seen.Add((draft.Parents[i], draft.Tokens[i])), Is.True, $"{what}: hierarchical drafts merge shared prefixes");
                }
            }
        }
    }

    // The hierarchical draft written as its definition, without the builder's heap: from the matched
    // node, repeatedly take the best frontier node (highest count, then lowest trie index) until the draft
    // is full; a child's confidence is its share of its siblings' counts times its parent's. Longest
    // suffix first; a shorter match replaces the draft only when strictly larger.
    private static List<(int Token, int Parent, float Confidence)> OracleDraft(TokenTrie trie, int[] context, DraftOptions o, int limit)
    {
        var best = new List<(int, int, float)> { (context[^1], -1, 1f) };
        for (int length = Math.Min(o.MaxQueryLength, context.Length); length >= 1; length--)
        {
            int match = trie.Find(context[^length..]);
            if (match < 0) continue;
            var draft = new List<(int Token, int Parent, float Confidence)> { (context[^1], -1, 1f) };
            var depths = new List<int> { 0 };
            var frontier = new List<(int Node, int Parent, float Confidence)>();
            void Offer(int node, int parent, float confidence)
            {
                long total = 0;
                for (int c = trie.FirstChild(node); c >= 0; c = trie.NextSibling(c)) total += trie.Frequency(c, o.Frequency);
                for (int c = trie.FirstChild(node); c >= 0; c = trie.NextSibling(c))
                    if (trie.Frequency(c, o.Frequency) > 0) frontier.Add((c, parent, confidence * trie.Frequency(c, o.Frequency) / total));
            }
            Offer(match, 0, 1f);
            while (frontier.Count > 0 && draft.Count < limit)
            {
                (int Node, int Parent, float Confidence) next = frontier
                    .OrderByDescending(f => trie.Frequency(f.Node, o.Frequency)).ThenBy(f => f.Node).First();
                frontier.Remove(next);
                draft.Add((trie.TokenOf(next.Node), next.Parent, next.Confidence));
                depths.Add(depths[next.Parent] + 1);
                if (depths[^1] < o.BranchLength) Offer(next.Node, draft.Count - 1, next.Confidence);
            }
            if (draft.Count > best.Count) best = draft;
            if (best.Count == limit) break;
        }
        return best;
    }

    [Test]
    public void HierarchicalDraftsEqualTheirDefinitionOnSkewedTries()
    {
        var random = new Random(11);
        using var trie = new TokenTrie(new TrieOptions { WindowLength = 8 });
        // Skewed counts (small ids common), so roots have many children with many ties.
        int Next() => (int)(40 * Math.Pow(random.NextDouble(), 3));
        for (int i = 0; i < 60; i++) trie.AddOutputCorpus(Enumerable.Range(0, 80).Select(_ => Next()).ToArray());
        trie.BeginRequest(Enumerable.Range(0, 50).Select(_ => Next()).ToArray());
        foreach (FrequencySource source in Enum.GetValues<FrequencySource>())
        foreach (int decodingLength in new[] { 2, 3, 16, 64 })
        foreach (int branchLength in new[] { 1, 4, 12 })
        foreach (int queryLength in new[] { 1, 2, 3 })
        {
            var options = new DraftOptions { DecodingLength = decodingLength, BranchLength = branchLength, MaxQueryLength = queryLength, Frequency = source };
            var builder = new DraftBuilder(options);
            var draft = new DraftTree(decodingLength);
            for (int trial = 0; trial < 10; trial++)
            {
                int[] context = Enumerable.Range(0, 4).Select(_ => Next()).ToArray();
                int limit = trial % 3 == 0 ? Math.Max(1, decodingLength / 2) : decodingLength;
                builder.Build(trie, context, draft, limit);
                List<(int Token, int Parent, float Confidence)> want = OracleDraft(trie, context, options, limit);
                string what = $"{source} dl {decodingLength} bl {branchLength} ql {queryLength} limit {limit} context [{string.Join(",", context)}]";
                Assert.That(draft.Count, Is.EqualTo(want.Count), what);
                for (int i = 1; i < want.Count; i++)
                {
                    Assert.That((draft.Tokens[i], draft.Parents[i]), Is.EqualTo((want[i].Token, want[i].Parent)), $"{what}: node {i}");
                    Assert.That(draft.Confidence[i], Is.EqualTo(want[i].Confidence), $"{what}: node {i} confidence");
                }
            }
        }
        trie.EndRequest();
    }

    [Test]
    public void LongerMatchWinsUnlessTheShorterDraftIsLarger()
    {
        using var trie = new TokenTrie(new TrieOptions { WindowLength = 4 });
        trie.AddOutputCorpus([1, 2, 3, 4]);          // after "1 2": only 3 4
        trie.AddOutputCorpus([9, 2, 7, 8]);          // after "2": 3 4 and 7 8
        var builder = new DraftBuilder(new DraftOptions { DecodingLength = 8, BranchLength = 3 });
        var draft = new DraftTree(8);
        builder.Build(trie, [1, 2], draft);
        Assert.That(draft.Count, Is.EqualTo(5), "the one-token match offers 4 nodes against 2: the larger draft wins");
        var small = new DraftBuilder(new DraftOptions { DecodingLength = 3, BranchLength = 3 });
        var three = new DraftTree(3);
        small.Build(trie, [1, 2], three);
        Assert.That(three.Tokens.ToArray(), Is.EqualTo(new[] { 2, 3, 4 }), "a full draft from the longer match is kept");
    }

    [Test]
    public void LimitsBoundMemoryUnderAnyWorkload()
    {
        var random = new Random(3);
        var options = new TrieOptions { MaxNodes = 5000, MaxNodesPerRoot = 800, WindowLength = 8 };
        using var trie = new TokenTrie(options);
        for (int request = 0; request < 50; request++)
        {
            int[] prompt = Enumerable.Range(0, 50).Select(_ => random.Next(300)).ToArray();
            trie.BeginRequest(prompt);
            for (int i = 0; i < 500; i++)
            {
                trie.AppendOutput([random.Next(random.Next(2) == 0 ? 5 : 300)]);
                Assert.That(trie.NodeCount, Is.LessThanOrEqualTo(options.MaxNodes + prompt.Length * options.WindowLength + options.WindowLength));
            }
            trie.EndRequest();
        }
        Assert.That(trie.SqueezeCount, Is.Positive);
        long bytes = trie.BytesAllocated;
        for (int i = 0; i < 20000; i++) trie.AppendOutput([random.Next(300)]);
        Assert.That(trie.BytesAllocated, Is.LessThanOrEqualTo(bytes * 2), "memory stays bounded once the limits are reached");
    }

    [Test]
    public void SaveLoadRoundTripKeepsOutputCounts()
    {
        string path = Path.GetTempFileName();
        try
        {
            var random = new Random(5);
            using var trie = new TokenTrie(new TrieOptions { WindowLength = 5 });
            for (int i = 0; i < 20; i++) trie.AddOutputCorpus(Enumerable.Range(0, 40).Select(_ => random.Next(30)).ToArray());
            trie.BeginRequest([1, 2, 3]);  // prompt counts are per request: not saved
            trie.Save(path);
            using var loaded = new TokenTrie(new TrieOptions { WindowLength = 5 });
            loaded.Load(path, vocabSize: 30);
            CountedNodes(trie, out List<string> original);
            CountedNodes(loaded, out List<string> restored);
            var outputOnly = original.Where(p => trie.Frequency(trie.Find(p.Split(',').Select(int.Parse).ToArray()), FrequencySource.Output) > 0).ToList();
            Assert.That(restored, Is.EquivalentTo(outputOnly));
            foreach (string p in restored)
            {
                int[] tokens = p.Split(',').Select(int.Parse).ToArray();
                Assert.That(loaded.Frequency(loaded.Find(tokens), FrequencySource.Output), Is.EqualTo(trie.Frequency(trie.Find(tokens), FrequencySource.Output)));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestCase("flip", "checksum")]
    [TestCase("truncate", "truncated")]
    [TestCase("foreign", "not a Lookahead trie file")]
    [TestCase("version", "format version 7")]
    [TestCase("vocab", "outside this model's vocabulary")]
    public void BadFilesAreRejectedAndLeaveTheTrieUntouched(string damage, string message)
    {
        string path = Path.GetTempFileName();
        try
        {
            using (var source = new TokenTrie())
            {
                source.AddOutputCorpus([5, 6, 7, 8, 9, 25]);
                source.Save(path);
            }
            byte[] bytes = File.ReadAllBytes(path);
            int vocab = 100;
            switch (damage)
            {
                case "flip": bytes[30] ^= 0x40; break;
                case "truncate": bytes = bytes[..^5]; break;
                case "foreign": bytes = "PK\x03\x04 this is a zip file, not a trie"u8.ToArray(); break;
                case "version": bytes[8] = 7; break;
                case "vocab": vocab = 20; break;
            }
            File.WriteAllBytes(path, bytes);

            using var trie = new TokenTrie();
            trie.AddOutputCorpus([1, 2, 3]);
            int nodes = trie.NodeCount;
            var error = Assert.Throws<LookaheadException>(() => trie.Load(path, vocab));
            Assert.That(error!.Message, Does.Contain(message));
            Assert.That(trie.NodeCount, Is.EqualTo(nodes));
            Assert.That(trie.Frequency(trie.Find([1, 2, 3]), FrequencySource.Output), Is.EqualTo(1));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void PromptCountsEndWithTheRequest()
    {
        using var trie = new TokenTrie(new TrieOptions { WindowLength = 3 });
        trie.BeginRequest([4, 5, 6, 4, 5]);
        Assert.That(trie.Frequency(trie.Find([4, 5]), FrequencySource.Input), Is.EqualTo(2));
        trie.EndRequest();
        Assert.That(trie.Frequency(trie.Find([4, 5]), FrequencySource.Input), Is.Zero);
        Assert.That(trie.Frequency(trie.Find([4, 5]), FrequencySource.Mix), Is.Zero);
    }
}
