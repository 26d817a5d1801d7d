namespace Lookahead.Decoding;

/// <summary>
/// The prompt and the tokens generated so far (the query context of each draft), taking each step's tokens
/// exactly as one-at-a-time decoding would: up to and including a stop token, and no further than the
/// token budget.
/// </summary>
internal sealed class GeneratedSequence
{
    private readonly int[] _tokens;
    private readonly int _promptLength;
    private readonly int _maxTokens;
    private readonly IReadOnlyList<int> _stopTokens;
    private int _length;

    public GeneratedSequence(ReadOnlySpan<int> prompt, int maxTokens, IReadOnlyList<int> stopTokens)
    {
        _tokens = new int[prompt.Length + maxTokens];
        prompt.CopyTo(_tokens);
        _promptLength = _length = prompt.Length;
        _maxTokens = maxTokens;
        _stopTokens = stopTokens;
    }

    /// <summary>Prompt and generated tokens.</summary>
    public ReadOnlySpan<int> History => _tokens.AsSpan(0, _length);

    /// <summary>The last token: the next step's root.</summary>
    public int Last => _tokens[_length - 1];

    public int Generated => _length - _promptLength;

    public bool Full => Generated == _maxTokens;

    /// <summary>Appends what a step emitted as far as plain decoding would go; returns what was taken.</summary>
    public ReadOnlySpan<int> Append(ReadOnlySpan<int> step, out bool stopped)
    {
        stopped = false;
        int start = _length;
        foreach (int token in step)
        {
            if (Full) break;
            _tokens[_length++] = token;
            if (IsStop(token))
            {
                stopped = true;
                break;
            }
        }
        return _tokens.AsSpan(start, _length - start);
    }

    public int[] Output() => _tokens[_promptLength.._length];

    private bool IsStop(int token)
    {
        for (int i = 0; i < _stopTokens.Count; i++)
        {
            if (_stopTokens[i] == token) return true;
        }
        return false;
    }
}
