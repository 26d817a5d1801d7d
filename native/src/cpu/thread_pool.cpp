#include "thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define LK_CPU_RELAX() _mm_pause()
#else
#define LK_CPU_RELAX() std::this_thread::yield()
#endif

namespace lk {
namespace {
// About 20-50 microseconds of spinning: long enough to bridge the gap between the jobs of one step,
// short enough that an idle pool stops burning a core almost at once.
constexpr int kSpinIterations = 20000;
}  // namespace

int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
    workers_.reserve(n_threads_ - 1);
    // Workers start from the generation of construction time, so a job (or the shutdown) dispatched
    // before a worker first runs is still seen by it.
    const uint32_t start = generation_.load();
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i, start] { worker_loop(i, start); });
}

ThreadPool::~ThreadPool() {
    stopping_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    generation_.notify_all();
    for (auto& worker : workers_) worker.join();
}

void ThreadPool::dispatch() {
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    generation_.notify_all();
    job_(job_state_, 0, n_threads_);
    while (pending_.load(std::memory_order_acquire) != 0) LK_CPU_RELAX();
}

void ThreadPool::worker_loop(int index, uint32_t seen) {
    for (;;) {
        uint32_t current = seen;
        for (int spin = 0; spin < kSpinIterations; ++spin) {
            current = generation_.load(std::memory_order_acquire);
            if (current != seen) break;
            LK_CPU_RELAX();
        }
        if (current == seen) {
            generation_.wait(seen, std::memory_order_acquire);
            current = generation_.load(std::memory_order_acquire);
        }
        seen = current;
        if (stopping_.load(std::memory_order_acquire)) return;
        job_(job_state_, index, n_threads_);
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

}  // namespace lk
