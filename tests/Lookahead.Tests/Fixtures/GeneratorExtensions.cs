using Lookahead.Decoding;

namespace Lookahead.Tests.Fixtures;

internal static class GeneratorExtensions
{
    /// <summary>One generation on a generator made for it, disposed after (with the trie it owns).</summary>
    public static GenerationResult GenerateOnce(this Generator generator, ReadOnlySpan<int> prompt, GenerationOptions options,
        TokensCallback? onTokens = null)
    {
        using (generator)
            return generator.Generate(prompt, options, onTokens);
    }
}
