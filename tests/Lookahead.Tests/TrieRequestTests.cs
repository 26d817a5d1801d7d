using Lookahead.Drafting;

namespace Lookahead.Tests;

/// <summary>
/// Several requests open on one trie (a batch): against a brute-force oracle, each request sees its own
/// prompt's counts and everyone's output counts, each request's output windows are its own, and squeezes
/// keep every open prompt's n-grams.
/// </summary>
public class TrieRequestTests
{
    private const int Window = 4;

    private sealed class Oracle(ISet<int> stops)
    {
        public readonly Dictionary<string, int> Output = new();
        public readonly List<Dictionary<string, int>?> Prompts = [];  // per request; null once closed
        public readonly List<List<int>> Histories = [];

        private static string Key(IEnumerable<int> tokens) => string.Join(",", tokens);

        public int Open(int[] prompt)
        {
            var counts = new Dictionary<string, int>();
            for (int s = 0; s < prompt.Length; s++)
            {
                if (stops.Contains(prompt[s])) continue;
                for (int e = s + 1; e <= Math.Min(prompt.Length, s + Window); e++)
                    counts[Key(prompt[s..e])] = counts.GetValueOrDefault(Key(prompt[s..e])) + 1;
            }
            Prompts.Add(counts);
            Histories.Add([]);
            return Prompts.Count - 1;
        }

        public void Append(int request, int token)
        {
            List<int> history = Histories[request];
            history.Add(token);
            int p = history.Count - 1;
            for (int s = Math.Max(0, p - Window + 1); s <= p; s++)
            {
                if (stops.Contains(history[s])) continue;
                string key = Key(history.Skip(s).Take(p - s + 1));
                Output[key] = Output.GetValueOrDefault(key) + 1;
            }
        }

        // Output tokens were skipped: windows across the gap never count; the last Window - 1 of the recent
        // tokens start new ones.
        public void Restart(int request, int[] recent)
        {
            Histories[request].Clear();
            foreach (int token in recent[Math.Max(0, recent.Length - (Window - 1))..]) Append(request, token);
        }

        public void Squeeze()
        {
            // An n-gram goes when it or any of its prefixes is left with no count (a window reopened after a
            // squeeze counts extensions of a prefix that itself counts nothing).
            foreach (string key in Output.Keys.ToList()) Output[key] /= 2;
            bool Counts(string key) => Output.GetValueOrDefault(key) > 0 || Prompts.Any(p => p is not null && p.ContainsKey(key));
            foreach (string key in Output.Keys.ToList())
            {
                string[] tokens = key.Split(',');
                if (Enumerable.Range(1, tokens.Length).Any(n => !Counts(string.Join(",", tokens.Take(n))))) Output.Remove(key);
            }
        }
    }

    [Test]
    public void ConcurrentRequestsMatchTheOracle()
    {
        var stops = new HashSet<int> { 0 };
        for (int seed = 0; seed < 12; seed++)
        {
            var random = new Random(seed);
            using var trie = new TokenTrie(new TrieOptions { WindowLength = Window, StopTokens = stops });
            var oracle = new Oracle(stops);
            var requests = new List<TrieRequest?>();
            int vocab = 3 + seed % 6;
            int[] RandomTokens(int max) => Enumerable.Range(0, random.Next(0, max)).Select(_ => random.Next(vocab)).ToArray();
            for (int op = 0; op < 300; op++)
            {
                List<int> open = Enumerable.Range(0, requests.Count).Where(r => requests[r] is not null).ToList();
                int choice = random.Next(10);
                if (choice == 0 || open.Count == 0)
                {
                    int[] prompt = RandomTokens(20);
                    requests.Add(trie.OpenRequest(prompt));
                    oracle.Open(prompt);
                }
                else if (choice == 1)
                {
                    int r = open[random.Next(open.Count)];
                    requests[r]!.Dispose();
                    requests[r] = null;
                    oracle.Prompts[r] = null;
                }
                else if (choice == 2)
                {
                    trie.Squeeze();
                    oracle.Squeeze();
                }
                else if (choice == 3)
                {
                    int r = open[random.Next(open.Count)];
                    int[] recent = RandomTokens(8);
                    requests[r]!.RestartOutput(recent);
                    oracle.Restart(r, recent);
                }
                else
                {
                    int r = open[random.Next(open.Count)];
                    int token = random.Next(vocab);
                    requests[r]!.AppendOutput([token]);
                    oracle.Append(r, token);
                }
                AssertSame(trie, oracle, requests, $"seed {seed} op {op}");
            }
            foreach (TrieRequest? request in requests) request?.Dispose();
            Assert.That(trie.OpenRequests, Is.EqualTo(1), "only BeginRequest's own request is left");
        }
    }

    [Test]
    public void AClosedRequestIsRefusedAndItsPromptStopsCounting()
    {
        using var trie = new TokenTrie(new TrieOptions { WindowLength = Window });
        TrieRequest first = trie.OpenRequest([1, 2, 3]);
        TrieRequest second = trie.OpenRequest([7, 8]);
        var builder = new DraftBuilder(new DraftOptions { DecodingLength = 8 });
        var draft = new DraftTree(8);
        builder.Build(first, [1], draft);
        Assert.That(draft.Tokens.ToArray(), Is.EqualTo(new[] { 1, 2, 3 }), "its own prompt drafts for it");
        builder.Build(second, [1], draft);
        Assert.That(draft.Count, Is.EqualTo(1), "another request's prompt does not");
        first.AppendOutput([1, 5]);
        builder.Build(second, [1], draft);
        Assert.That(draft.Tokens.ToArray(), Is.EqualTo(new[] { 1, 5 }), "its output does");
        first.Dispose();
        Assert.Throws<ObjectDisposedException>(() => first.AppendOutput([1]));
        Assert.Throws<ObjectDisposedException>(() => builder.Build(first, [1], draft));
        trie.Squeeze();
        Assert.That(trie.Find([1, 2, 3]), Is.LessThan(0), "the closed prompt's n-grams no longer hold their nodes");
        Assert.That(trie.Find([7, 8]), Is.GreaterThanOrEqualTo(0), "the open one's do");
        second.Dispose();
    }

    private static void AssertSame(TokenTrie trie, Oracle oracle, List<TrieRequest?> requests, string when)
    {
        var keys = new HashSet<string>(oracle.Output.Keys);
        foreach (Dictionary<string, int>? prompt in oracle.Prompts)
            if (prompt is not null) keys.UnionWith(prompt.Keys);
        foreach (string key in keys)
        {
            int node = trie.Find(key.Split(',').Select(int.Parse).ToArray());
            Assert.That(node, Is.GreaterThanOrEqualTo(0), $"{when}: n-gram [{key}] missing");
            Assert.That(trie.Frequency(node, FrequencySource.Output), Is.EqualTo(oracle.Output.GetValueOrDefault(key)), $"{when}: output count of [{key}]");
            for (int r = 0; r < requests.Count; r++)
            {
                if (requests[r] is not TrieRequest request) continue;
                Assert.That(trie.Frequency(node, FrequencySource.Input, request), Is.EqualTo(oracle.Prompts[r]!.GetValueOrDefault(key)),
                    $"{when}: request {r}'s prompt count of [{key}]");
            }
        }
    }
}
