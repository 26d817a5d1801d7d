// A persistent pool of worker threads. The calling thread takes part as worker 0, so a pool of one
// thread runs everything inline. Workers spin briefly between jobs (a decoding step issues many
// small jobs back to back) and then sleep on a futex-backed atomic wait.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace lk {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Runs fn(thread_index, n_threads) once on every thread and returns when all are done.
    template <typename F>
    void run(F&& fn) {
        if (n_threads_ == 1) {
            fn(0, 1);
            return;
        }
        job_ = &invoke<F>;
        job_state_ = &fn;
        dispatch();
    }

    // Splits [0, count) into pieces that the threads take in order as they become free, so a thread
    // slowed by the memory system or another process does not hold up the others: each piece is
    // 1 / (2 x threads) of what is left (rounded up to a multiple of `grain`, at least `grain`), so early
    // pieces are long sequential reads and the last ones short, which keeps the wait at the end short.
    // Runs fn(begin, end) on each piece.
    template <typename F>
    void parallel_pieces(int64_t count, int64_t grain, F&& fn) {
        std::atomic<int64_t> next{0};
        const int64_t share = 2 * int64_t{n_threads_};
        run([&](int, int) {
            int64_t begin = next.load(std::memory_order_relaxed);
            while (begin < count) {
                const int64_t want = ((count - begin) / share + grain - 1) / grain * grain;
                const int64_t end = std::min(count, begin + std::max(grain, want));
                if (next.compare_exchange_weak(begin, end, std::memory_order_relaxed)) {
                    fn(begin, end);
                    begin = next.load(std::memory_order_relaxed);
                }
            }
        });
    }

private:
    template <typename F>
    static void invoke(void* state, int thread, int threads) {
        (*static_cast<F*>(state))(thread, threads);
    }
    void dispatch();
    void worker_loop(int index, uint32_t seen);

    int n_threads_;
    std::vector<std::thread> workers_;
    void (*job_)(void*, int, int) = nullptr;
    void* job_state_ = nullptr;
    std::atomic<uint32_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stopping_{false};
};

// Number of online cores (at least 1).
int hardware_threads();

}  // namespace lk
