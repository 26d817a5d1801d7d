// The model's weights on one device: every tensor uploaded once, in its stored dtype.
#pragma once

#include <cstdint>
#include <vector>

#include "../common/model.h"
#include "cuda_check.h"

namespace lk::cuda {

struct DeviceTensor {
    DeviceBuffer<uint8_t> data;
    int32_t dtype = LK_DTYPE_F32;
    int64_t rows = 0, cols = 0;  // 0 rows: absent (an optional bias)

    const void* get() const { return data.get(); }
    const float* f32() const { return reinterpret_cast<const float*>(data.get()); }
    const float* bias() const { return rows ? f32() : nullptr; }
};

struct DeviceLayer {
    DeviceTensor attn_norm, q, k, v, o, q_bias, k_bias, v_bias, ffn_norm, gate, up, down;
};

class DeviceWeights {
public:
    // Uploads every tensor of model to the current device.
    explicit DeviceWeights(const Model& model);

    const DeviceTensor& token_embedding() const { return token_embedding_; }
    const DeviceTensor& output_norm() const { return output_norm_; }
    // The output head: the token embedding when the model ties them.
    const DeviceTensor& output_head() const { return tied_ ? token_embedding_ : output_; }
    const DeviceLayer& layer(int l) const { return layers_[l]; }
    const float* rope_inv_freq() const { return inv_freq_.get(); }

private:
    bool tied_ = false;
    DeviceTensor token_embedding_, output_norm_, output_;
    std::vector<DeviceLayer> layers_;
    DeviceBuffer<float> inv_freq_;
};

}  // namespace lk::cuda
