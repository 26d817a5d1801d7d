namespace Lookahead.Decoding;

/// <summary>What <see cref="InferenceContext.Profiling"/> measures (the C API's LK_PROFILE_*).</summary>
public enum ProfilingMode
{
    /// <summary>Nothing (the default).</summary>
    Off = 0,

    /// <summary>
    /// Wall time per stage of the native steps. On CUDA it waits for the device at every stage boundary and
    /// launches without CUDA graphs, so steps run slower while it is on.
    /// </summary>
    Stages = 1,

    /// <summary>
    /// The GPU time of each forward pass, verification and compaction (the "device" stage; CUDA only,
    /// nothing is counted on the CPU). Steps otherwise run as usual; a step's wall time minus its device
    /// time is the host's overhead.
    /// </summary>
    Device = 2,
}
