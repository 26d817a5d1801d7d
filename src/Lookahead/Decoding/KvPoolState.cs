namespace Lookahead.Decoding;

/// <summary>
/// A context's KV block pool (<see cref="InferenceContext.KvPool"/>): its size in blocks, the free ones, the
/// cached ones (full prefix blocks no sequence holds, reusable until the pool needs them) and the slots per
/// block. Blocks in use = Blocks - Free - Cached.
/// </summary>
public readonly record struct KvPoolState(int Blocks, int Free, int Cached, int BlockTokens)
{
    /// <summary>Blocks held by live sequences.</summary>
    public int InUse => Blocks - Free - Cached;
}
