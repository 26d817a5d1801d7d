// A 64-byte aligned heap buffer: SIMD loads never straddle more cache lines than needed.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

namespace lk {

class AlignedBuffer {
public:
    static constexpr size_t kAlignment = 64;

    AlignedBuffer() = default;
    explicit AlignedBuffer(size_t bytes) : size_(bytes) {
        if (bytes == 0) return;
        size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
        data_ = std::aligned_alloc(kAlignment, rounded);
        if (!data_) throw std::bad_alloc();
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
