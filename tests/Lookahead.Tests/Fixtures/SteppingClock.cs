namespace Lookahead.Tests.Fixtures;

/// <summary>
/// A clock that moves one millisecond each time it is read: every interval a generation measures between
/// two reads is the same, so the adaptive sizer sees every draft size cost the same and its choices depend
/// only on the drafts (deterministic across machines and runs).
/// </summary>
internal sealed class SteppingClock : TimeProvider
{
    private long _ticks;

    public override long TimestampFrequency => 1000;

    public override long GetTimestamp() => Interlocked.Increment(ref _ticks);
}
