using System.Runtime.InteropServices;

namespace Lookahead.Interop;

/// <summary>Owns an lk_model*.</summary>
internal sealed class ModelHandle : SafeHandle
{
    public ModelHandle() : base(nint.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == nint.Zero;

    protected override bool ReleaseHandle()
    {
        NativeMethods.lk_model_free(handle);
        return true;
    }
}

/// <summary>Owns an lk_context*, and keeps the model it was created from alive until it is released.</summary>
internal sealed class ContextHandle : SafeHandle
{
    private ModelHandle? _model;

    public ContextHandle() : base(nint.Zero, ownsHandle: true) { }

    public override bool IsInvalid => handle == nint.Zero;

    /// <summary>Pins the model for the lifetime of this context (the native context borrows its weights).</summary>
    internal void KeepAlive(ModelHandle model)
    {
        bool added = false;
        model.DangerousAddRef(ref added);
        if (added) _model = model;
    }

    protected override bool ReleaseHandle()
    {
        NativeMethods.lk_context_free(handle);
        _model?.DangerousRelease();
        _model = null;
        return true;
    }
}
