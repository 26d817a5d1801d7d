using System.Runtime.InteropServices;

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

/// <summary>Any failure of Lookahead: bad model files, bad arguments, or a native error (with its status).</summary>
public sealed class LookaheadException : Exception
{
    /// <summary>Creates an exception for a managed-side failure.</summary>
    public LookaheadException(string message, Exception? inner = null) : base(message, inner) { }

    private LookaheadException(NativeStatus? status, string message, Exception? inner = null) : base(message, inner) => Status = status;

    /// <summary>The native status, or null when the error was detected on the managed side.</summary>
    public NativeStatus? Status { get; }

    /// <summary>The same failure with where it happened put first (the native status kept).</summary>
    internal LookaheadException WithContext(string where) => new(Status, $"{where}: {Message}", this);

    /// <summary>Throws with the native thread-local message when status is not Ok.</summary>
    internal static unsafe void ThrowIfFailed(int status)
    {
        if (status == 0) return;
        string message = Marshal.PtrToStringUTF8((nint)Interop.NativeMethods.lk_last_error()) ?? "unknown native error";
        throw new LookaheadException((NativeStatus)status, message);
    }
}
