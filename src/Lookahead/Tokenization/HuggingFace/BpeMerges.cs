namespace Lookahead.Tokenization.HuggingFace;

/// <summary>
/// The merge rules of a BPE model and the algorithm that applies them: repeatedly merge the adjacent pair
/// with the lowest rank (the leftmost one among equals) until no pair has a rule, as Hugging Face's BPE
/// model does. A heap keeps long words (a run of thousands of letters) near n log n.
/// </summary>
internal sealed class BpeMerges
{
    private readonly Dictionary<long, (int Rank, int Merged)> _rules;

    public BpeMerges(Dictionary<long, (int Rank, int Merged)> rules) => _rules = rules;

    public int Count => _rules.Count;

    public static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>Merges the symbols (vocabulary ids) in place and appends the resulting ids.</summary>
    public void Apply(int[] symbols, List<int> output)
    {
        int n = symbols.Length;
        if (n == 1) { output.Add(symbols[0]); return; }
        var next = new int[n];
        var previous = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; previous[i] = i - 1; alive[i] = true; }

        var queue = new PriorityQueue<int, (int Rank, int Position)>();
        for (int i = 0; i + 1 < n; i++) Enqueue(queue, symbols, i, i + 1);
        while (queue.TryDequeue(out int left, out (int Rank, int Position) priority))
        {
            int right = alive[left] ? next[left] : -1;
            if (right < 0 || !_rules.TryGetValue(Key(symbols[left], symbols[right]), out var rule) || rule.Rank != priority.Rank)
                continue;  // a stale entry: one of its symbols has been merged since
            symbols[left] = rule.Merged;
            alive[right] = false;
            next[left] = next[right];
            if (next[left] >= 0) previous[next[left]] = left;
            if (previous[left] >= 0) Enqueue(queue, symbols, previous[left], left);
            if (next[left] >= 0) Enqueue(queue, symbols, left, next[left]);
        }
        for (int i = 0; i >= 0; i = next[i]) output.Add(symbols[i]);
    }

    private void Enqueue(PriorityQueue<int, (int, int)> queue, int[] symbols, int left, int right)
    {
        if (_rules.TryGetValue(Key(symbols[left], symbols[right]), out var rule)) queue.Enqueue(left, (rule.Rank, left));
    }
}
