// Device time of a call's GPU work (LK_PROFILE_DEVICE): events on the per-thread default stream around
// it, read once the call has waited for the device, added to the profile's "device" stage.
#pragma once

#include "../common/stage_profile.h"
#include "cuda_check.h"

namespace lk::cuda {

class DeviceTimer {
public:
    explicit DeviceTimer(StageProfile& profile) : profile_(profile) {
        check(cudaEventCreate(&start_), "cudaEventCreate");
        check(cudaEventCreate(&stop_), "cudaEventCreate");
    }
    DeviceTimer(const DeviceTimer&) = delete;
    DeviceTimer& operator=(const DeviceTimer&) = delete;
    ~DeviceTimer() {
        (void)cudaEventDestroy(start_);
        (void)cudaEventDestroy(stop_);
    }

    void start() {
        if (profile_.device_timing()) check(cudaEventRecord(start_, cudaStreamPerThread), "cudaEventRecord");
    }
    void stop() {
        if (profile_.device_timing()) check(cudaEventRecord(stop_, cudaStreamPerThread), "cudaEventRecord");
    }
    // After the call has waited for its work: adds the time between start and stop.
    void add() {
        if (!profile_.device_timing()) return;
        check(cudaEventSynchronize(stop_), "cudaEventSynchronize");
        float ms = 0;
        check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
        profile_.add_device_time(ms * 1e-3);
    }

private:
    StageProfile& profile_;
    cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

}  // namespace lk::cuda
