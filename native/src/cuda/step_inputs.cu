#include "step_inputs.cuh"

#include <cstring>

namespace lk::cuda {

StepInputs::Layout::Layout(int64_t n_batch) {
    int64_t next = 0;
    auto region = [&](int64_t count) {
        const int64_t offset = next;
        next += count;
        return offset;
    };
    tokens = region(n_batch);
    parents = region(n_batch);
    positions = region(n_batch);
    depths = region(n_batch);
    ancestor_offsets = region(n_batch);
    n_past = region(1);
    uploaded = next;
    argmax = region(n_batch);
    path = region(n_batch);
    walk = region(2 * n_batch);
    result = region(n_batch + 2);
    ancestors = region(n_batch * n_batch);  // each node's visible nodes: at most n_batch each
    total = next;
}

StepInputs::StepInputs(int32_t n_batch) : layout_(n_batch), device_(layout_.total), host_(layout_.total) {}

TreeView StepInputs::upload(const Tree& tree, int32_t n_past) {
    const int n = tree.size();
    int32_t* h = host_.data();
    for (int i = 0; i < n; ++i) {
        h[layout_.tokens + i] = tree.token(i);
        h[layout_.parents + i] = tree.parent(i);
        h[layout_.positions + i] = n_past + tree.depth(i);
        h[layout_.depths + i] = tree.depth(i);
    }
    int64_t flat = 0;
    if (!tree.is_chain()) {
        for (int i = 0; i < n; ++i) {
            h[layout_.ancestor_offsets + i] = static_cast<int32_t>(flat);
            std::memcpy(h + layout_.ancestors + flat, tree.visible(i), tree.visible_count(i) * sizeof(int32_t));
            flat += tree.visible_count(i);
        }
    }
    h[layout_.n_past] = n_past;
    check(cudaMemcpy(device_.get(), h, layout_.uploaded * sizeof(int32_t), cudaMemcpyHostToDevice), "batch upload");
    if (flat > 0)
        check(cudaMemcpy(at(layout_.ancestors), h + layout_.ancestors, flat * sizeof(int32_t), cudaMemcpyHostToDevice),
              "ancestor upload");
    return TreeView{at(layout_.depths), at(layout_.ancestor_offsets), tree.is_chain() ? nullptr : at(layout_.ancestors), n,
                    tree.max_depth()};
}

void StepInputs::upload_path(const int32_t* nodes, int32_t n) {
    check(cudaMemcpy(path(), nodes, n * sizeof(int32_t), cudaMemcpyHostToDevice), "path upload");
}

int32_t StepInputs::download_path(int32_t n, int32_t* path, int32_t* bonus) {
    int32_t* h = host_.data() + layout_.result;
    check(cudaMemcpy(h, result(), (n + 2) * sizeof(int32_t), cudaMemcpyDeviceToHost), "verify download");
    const int32_t length = h[0];
    std::memcpy(path, h + 1, length * sizeof(int32_t));
    *bonus = h[1 + length];
    return length;
}

}  // namespace lk::cuda
