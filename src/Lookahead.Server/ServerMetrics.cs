using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Lookahead.Batching;

namespace Lookahead.Server;

/// <summary>
/// The server's counters, and their Prometheus text exposition (GET /metrics): requests by endpoint and
/// status, prompt and generated tokens, decoding steps, drafted and accepted tokens, generated tokens per
/// second over the last ten seconds, and the batch's gauges (running, waiting, KV blocks).
/// </summary>
internal sealed class ServerMetrics(TimeProvider time)
{
    private const int RateSeconds = 10;

    private readonly ConcurrentDictionary<(string Endpoint, int Status), long> _requests = new();
    private long _promptTokens, _generatedTokens, _steps, _drafted, _accepted;
    private readonly long[] _perSecond = new long[RateSeconds + 1];  // generated tokens per wall-clock second, a ring
    private readonly long[] _secondOf = new long[RateSeconds + 1];
    private readonly Lock _rate = new();

    public void Request(string endpoint, int status) => _requests.AddOrUpdate((endpoint, status), 1, (_, n) => n + 1);

    public void Prompt(int tokens) => Interlocked.Add(ref _promptTokens, tokens);

    public void Generated(int tokens)
    {
        Interlocked.Add(ref _generatedTokens, tokens);
        long second = time.GetUtcNow().ToUnixTimeSeconds();
        lock (_rate)
        {
            int slot = (int)(second % _perSecond.Length);
            if (_secondOf[slot] != second)
            {
                _secondOf[slot] = second;
                _perSecond[slot] = 0;
            }
            _perSecond[slot] += tokens;
        }
    }

    public void Finished(int steps, long drafted, long accepted)
    {
        Interlocked.Add(ref _steps, steps);
        Interlocked.Add(ref _drafted, drafted);
        Interlocked.Add(ref _accepted, accepted);
    }

    // Tokens generated in the last RateSeconds whole seconds, per second.
    private double TokensPerSecond()
    {
        long now = time.GetUtcNow().ToUnixTimeSeconds();
        long sum = 0;
        lock (_rate)
        {
            for (int i = 0; i < _perSecond.Length; i++)
                if (_secondOf[i] < now && _secondOf[i] >= now - RateSeconds) sum += _perSecond[i];
        }
        return (double)sum / RateSeconds;
    }

    public string Exposition(BatchGauges gauges)
    {
        var text = new StringBuilder();
        void Metric(string name, string type, string help, IEnumerable<(string Labels, double Value)> samples)
        {
            text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} {type}\n");
            foreach ((string labels, double value) in samples)
                text.Append(CultureInfo.InvariantCulture, $"{name}{labels} {value.ToString("R", CultureInfo.InvariantCulture)}\n");
        }
        void One(string name, string type, string help, double value) => Metric(name, type, help, [("", value)]);

        Metric("lookahead_requests_total", "counter", "HTTP requests to the API by endpoint and status code.",
            _requests.OrderBy(r => r.Key.Endpoint, StringComparer.Ordinal).ThenBy(r => r.Key.Status)
                .Select(r => ($"{{endpoint=\"{r.Key.Endpoint}\",code=\"{r.Key.Status}\"}}", (double)r.Value)));
        One("lookahead_prompt_tokens_total", "counter", "Prompt tokens of the requests admitted.", Interlocked.Read(ref _promptTokens));
        One("lookahead_generation_tokens_total", "counter", "Tokens generated.", Interlocked.Read(ref _generatedTokens));
        One("lookahead_generation_tokens_per_second", "gauge", $"Tokens generated per second over the last {RateSeconds} seconds.", TokensPerSecond());
        long steps = Interlocked.Read(ref _steps);
        One("lookahead_decode_steps_total", "counter", "Decoding steps of finished requests (a batched step counts once per request in it).", steps);
        One("lookahead_drafted_tokens_total", "counter", "Draft tokens verified for finished requests.", Interlocked.Read(ref _drafted));
        One("lookahead_accepted_tokens_total", "counter", "Draft tokens accepted for finished requests.", Interlocked.Read(ref _accepted));
        One("lookahead_mean_tokens_per_step", "gauge", "Tokens per decoding step of finished requests (1 is plain decoding).",
            steps > 0 ? (double)(steps + Interlocked.Read(ref _accepted)) / steps : 0);
        One("lookahead_requests_running", "gauge", "Requests holding a sequence (prefilling or decoding).", gauges.Running);
        One("lookahead_queue_length", "gauge", "Requests waiting for a sequence or KV blocks.", gauges.Waiting);
        One("lookahead_kv_blocks_total", "gauge", "KV cache blocks in the pool.", gauges.KvPool.Blocks);
        One("lookahead_kv_blocks_in_use", "gauge", "KV cache blocks held by sequences (running or kept for continuations).", gauges.KvPool.InUse);
        One("lookahead_kv_blocks_parked", "gauge", "Blocks held by finished requests' sequences kept for continuations (a block shared by forks counts once per holder).", gauges.ParkedBlocks);
        One("lookahead_kv_blocks_cached", "gauge", "Published prefix blocks no sequence holds (reusable, evicted first).", gauges.KvPool.Cached);
        return text.ToString();
    }
}
