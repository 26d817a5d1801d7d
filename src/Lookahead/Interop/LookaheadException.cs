using System.Runtime.InteropServices;

namespace Lookahead;

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
