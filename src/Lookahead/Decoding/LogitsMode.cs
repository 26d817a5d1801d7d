using Lookahead.Interop;

namespace Lookahead.Decoding;

/// <summary>Which logits a forward pass keeps.</summary>
public enum LogitsMode
{
    /// <summary>None (prefill).</summary>
    None = NativeConstants.LogitsNone,
    /// <summary>Only the last node's.</summary>
    Last = NativeConstants.LogitsLast,
    /// <summary>Every node's.</summary>
    All = NativeConstants.LogitsAll,
}
