// Per-stage wall time of a context's steps (LK_PROFILE_STAGES), or the device time of its calls
// (LK_PROFILE_DEVICE, which a backend with a device measures itself and adds). For stage times, a backend
// whose work is asynchronous supplies a barrier that waits for it, called at every stage boundary so each
// stage is charged for its own work.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

#include "lookahead.h"

namespace lk {

enum class Stage : int {
    kEmbed,
    kAttentionInputs,   // RMSNorm, q/k/v projections with biases, RoPE, the K/V cache write
    kAttention,
    kAttentionOutput,   // output projection with the residual add
    kFeedForward,       // RMSNorm, gate and up projections, SwiGLU
    kFeedForwardDown,   // down projection with the residual add
    kOutput,            // final RMSNorm and the output head
    kVerify,            // argmax per node and the accepted path
    kCompact,           // moving the accepted nodes' K/V into place
    kDevice,            // device time of whole calls (LK_PROFILE_DEVICE only)
    kCount,
};

class StageProfile {
public:
    using Barrier = void (*)();
    using Clock = std::chrono::steady_clock;

    void set_barrier(Barrier barrier) { barrier_ = barrier; }
    void set_mode(int32_t mode) {
        mode_ = mode;
        totals_ = {};
    }
    // Stage timing (with its barriers) is on.
    bool enabled() const { return mode_ == LK_PROFILE_STAGES; }
    // The backend should time its device work and add it with add_device_time.
    bool device_timing() const { return mode_ == LK_PROFILE_DEVICE; }
    void add_device_time(double seconds) {
        Total& total = totals_[static_cast<int>(Stage::kDevice)];
        total.calls += 1;
        total.seconds += seconds;
    }

    // Copies up to capacity totals; returns the number of stages.
    int32_t copy(lk_stage_time* out, int32_t capacity) const;

    // Times one stage from construction to destruction (nothing at all while profiling is off).
    class Scope {
    public:
        Scope(StageProfile& profile, Stage stage) : profile_(profile.enabled() ? &profile : nullptr), stage_(stage) {
            if (!profile_) return;
            profile_->wait();
            start_ = Clock::now();
        }
        ~Scope() {
            if (!profile_) return;
            profile_->wait();
            Total& total = profile_->totals_[static_cast<int>(stage_)];
            total.calls += 1;
            total.seconds += std::chrono::duration<double>(Clock::now() - start_).count();
        }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

    private:
        StageProfile* profile_;
        Stage stage_;
        Clock::time_point start_{};
    };

private:
    struct Total {
        int64_t calls = 0;
        double seconds = 0;
    };
    void wait() const {
        if (barrier_) barrier_();
    }

    int32_t mode_ = LK_PROFILE_OFF;
    Barrier barrier_ = nullptr;
    std::array<Total, static_cast<int>(Stage::kCount)> totals_{};
};

}  // namespace lk
