// Reads a fuzz input as a stream of small decisions; past its end every read is 0.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lk_fuzz {

class Input {
public:
    Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

    bool done() const { return at_ >= size_; }
    uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
    // A value in [low, low + span), span >= 1: mostly valid, with the edges just outside reachable.
    int32_t in(int32_t low, int32_t span) { return low + static_cast<int32_t>(byte() % static_cast<uint32_t>(span)); }

private:
    const uint8_t* data_;
    size_t size_;
    size_t at_ = 0;
};

}  // namespace lk_fuzz
