namespace Lookahead;

/// <summary>Status codes of the native library (lk_status).</summary>
public enum NativeStatus
{
    /// <summary>Success.</summary>
    Ok = 0,
    /// <summary>A parameter is out of range or inconsistent.</summary>
    InvalidArgument = -1,
    /// <summary>An allocation failed.</summary>
    OutOfMemory = -2,
    /// <summary>A valid request this build or model cannot serve.</summary>
    Unsupported = -3,
    /// <summary>The batch does not fit in the remaining KV cache.</summary>
    ContextFull = -4,
    /// <summary>The requested backend has no usable device.</summary>
    NoDevice = -5,
    /// <summary>Calls were made in an invalid order.</summary>
    InvalidState = -6,
    /// <summary>A bug in the native library.</summary>
    Internal = -7,
    /// <summary>A forward pass produced NaN or infinite logits where a token was due.</summary>
    NonFinite = -8,
}
