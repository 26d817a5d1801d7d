// A 64-byte aligned heap buffer: SIMD loads never straddle more cache lines than needed. Large buffers
// (weights, KV caches) start on a 2 MiB boundary and ask Linux for transparent huge pages, so the
// 2 MiB-aligned ranges inside them take one TLB entry each: streaming through 4 KiB pages costs a TLB
// miss per page, about 7% of the read bandwidth on the development machine (a VM).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace lk {

class AlignedBuffer {
public:
    static constexpr size_t kAlignment = 64;
    static constexpr size_t kHugePage = size_t{1} << 21;

    AlignedBuffer() = default;
    explicit AlignedBuffer(size_t bytes) : size_(bytes) {
        if (bytes == 0) return;
        const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
        const bool huge = bytes >= kHugePage;
        if (posix_memalign(&data_, huge ? kHugePage : kAlignment, rounded) != 0) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        // Advice only: where transparent huge pages are off, the buffer keeps 4 KiB pages.
        if (huge) (void)madvise(data_, rounded & ~size_t{4095}, MADV_HUGEPAGE);
#endif
    }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    AlignedBuffer(AlignedBuffer&& other) noexcept { swap(other); }
    AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
        AlignedBuffer moved(std::move(other));
        swap(moved);
        return *this;
    }
    ~AlignedBuffer() { std::free(data_); }

    void* data() { return data_; }
    const void* data() const { return data_; }
    size_t size() const { return size_; }
    template <typename T> T* as() { return static_cast<T*>(data_); }
    template <typename T> const T* as() const { return static_cast<const T*>(data_); }

private:
    void swap(AlignedBuffer& other) noexcept {
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
    }
    void* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace lk
