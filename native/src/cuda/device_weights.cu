#include "device_weights.cuh"

namespace lk::cuda {
namespace {

DeviceTensor upload(const Tensor& t) {
    DeviceTensor d;
    if (!t.present()) return d;
    d.dtype = t.dtype;
    d.rows = t.rows;
    d.cols = t.cols;
    d.data = DeviceBuffer<uint8_t>(t.data.size());
    check(cudaMemcpy(d.data.get(), t.data.data(), t.data.size(), cudaMemcpyHostToDevice), "weight upload");
    return d;
}

}  // namespace

DeviceWeights::DeviceWeights(const Model& model) : tied_((model.params.flags & LK_MODEL_TIED_OUTPUT) != 0) {
    token_embedding_ = upload(model.token_embedding);
    output_norm_ = upload(model.output_norm);
    if (!tied_) output_ = upload(model.output);
    for (const LayerWeights& w : model.layers) {
        layers_.push_back(DeviceLayer{upload(w.attn_norm), upload(w.q), upload(w.k), upload(w.v), upload(w.o), upload(w.q_bias),
                                      upload(w.k_bias), upload(w.v_bias), upload(w.ffn_norm), upload(w.gate), upload(w.up),
                                      upload(w.down)});
    }
    inv_freq_ = DeviceBuffer<float>(model.rope_inv_freq.size());
    check(cudaMemcpy(inv_freq_.get(), model.rope_inv_freq.data(), model.rope_inv_freq.size() * sizeof(float), cudaMemcpyHostToDevice),
          "rope upload");
}

}  // namespace lk::cuda
