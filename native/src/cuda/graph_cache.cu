#include "graph_cache.cuh"

namespace lk::cuda {

cudaGraphExec_t GraphCache::find(const GraphKey& key) const {
    for (const Entry& entry : entries_)
        if (entry.key == key) return entry.exec;
    return nullptr;
}

cudaGraphExec_t GraphCache::capture(const GraphKey& key, const std::function<void()>& encode) {
    const cudaStream_t stream = cudaStreamPerThread;  // kernels launch there (--default-stream per-thread)
    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    cudaGraph_t graph = nullptr;
    try {
        encode();
    } catch (...) {
        (void)cudaStreamEndCapture(stream, &graph);
        if (graph) (void)cudaGraphDestroy(graph);
        throw;
    }
    check(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t status = cudaGraphInstantiateWithFlags(&exec, graph, 0);
    (void)cudaGraphDestroy(graph);
    check(status, "cudaGraphInstantiate");
    entries_.push_back({key, exec});
    return exec;
}

void GraphCache::clear() {
    for (const Entry& entry : entries_) (void)cudaGraphExecDestroy(entry.exec);
    entries_.clear();
}

}  // namespace lk::cuda
