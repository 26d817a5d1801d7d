namespace Lookahead.Decoding;

/// <summary>Counts and times the steps of one generation on a <see cref="TimeProvider"/>'s clock.</summary>
internal sealed class StepStatistics(TimeProvider time)
{
    private long _draftTicks, _forwardTicks, _decodeStart;
    private TimeSpan _prefill, _decode;

    public int Steps { get; private set; }
    public long Drafted { get; private set; }
    public long Accepted { get; private set; }

    public long Now => time.GetTimestamp();

    public TimeSpan Elapsed(long start, long end) => time.GetElapsedTime(start, end);

    public void EndPrefill(long start) => _prefill = time.GetElapsedTime(start);

    public void StartDecode() => _decodeStart = time.GetTimestamp();

    public void EndDecode() => _decode = time.GetElapsedTime(_decodeStart);

    /// <summary>One step: drafting from stepStart to forwardStart, the native step to forwardEnd, a tree of
    /// nodes nodes (root included) of which emitted - 1 were accepted.</summary>
    public void AddStep(long stepStart, long forwardStart, long forwardEnd, int nodes, int emitted)
    {
        Steps++;
        Drafted += nodes - 1;
        Accepted += emitted - 1;
        _draftTicks += forwardStart - stepStart;
        _forwardTicks += forwardEnd - forwardStart;
    }

    public GenerationStats Result(int promptTokens, int generatedTokens, TimeSpan deviceTime) => new()
    {
        PromptTokens = promptTokens,
        GeneratedTokens = generatedTokens,
        Steps = Steps,
        DraftedTokens = Drafted,
        AcceptedTokens = Accepted,
        PrefillTime = _prefill,
        DecodeTime = _decode,
        DraftTime = time.GetElapsedTime(0, _draftTicks),
        ForwardTime = time.GetElapsedTime(0, _forwardTicks),
        DeviceTime = deviceTime,
    };
}
