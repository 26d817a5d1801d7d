// The KV cache as a pool of fixed-size blocks: a sequence holds a block table (its logical blocks'
// physical ones), so a cache's memory follows the tokens in flight rather than sequences x maximum
// length, and blocks are reference-counted so that sequences can share full prefix blocks.
#pragma once

#include <cstdint>
#include <vector>

namespace lk {

constexpr int kKvBlockSlots = 16;  // slots per block (the CPU backend's key block: cpu::kKeyBlock)

class KvBlockPool {
public:
    explicit KvBlockPool(int32_t n_blocks);

    int32_t size() const { return static_cast<int32_t>(refs_.size()); }
    int32_t free_blocks() const { return static_cast<int32_t>(free_.size()); }
    int32_t refs(int32_t block) const { return refs_[block]; }

    // A free block with one reference, or -1 when none is left.
    int32_t allocate();
    // One more holder of a block in use (a sequence sharing another's prefix).
    void retain(int32_t block);
    // One holder less; the block is free again when none is left.
    void release(int32_t block);

private:
    std::vector<int32_t> refs_;
    std::vector<int32_t> free_;  // a stack: the next block handed out is at the back
};

// Which blocks a sequence's slots live in: slot s is slot s % kKvBlockSlots of block blocks[s / kKvBlockSlots].
class BlockTable {
public:
    // Grows the table to cover slots [0, slots); false (the table unchanged) when the pool runs out.
    bool reserve(int64_t slots, KvBlockPool& pool);
    // Gives back every block (the table is empty after).
    void release_all(KvBlockPool& pool);
    // Gives back the blocks holding no slot below slots.
    void release_from(int64_t slots, KvBlockPool& pool);

    const int32_t* data() const { return blocks_.data(); }
    int32_t blocks() const { return static_cast<int32_t>(blocks_.size()); }
    int64_t physical_slot(int64_t slot) const {
        return int64_t{blocks_[slot / kKvBlockSlots]} * kKvBlockSlots + slot % kKvBlockSlots;
    }

private:
    std::vector<int32_t> blocks_;
};

namespace testing {
// Tests set this before creating a context so that its pool hands blocks out in descending order: a
// sequence's consecutive logical blocks then never sit next to each other, which every paged access path
// must handle (by default a lone sequence gets contiguous blocks).
extern bool scatter_kv_blocks;
}  // namespace testing

}  // namespace lk
