// The KV cache as a pool of fixed-size blocks: a sequence holds a block table (its logical blocks'
// physical ones), so a cache's memory follows the tokens in flight rather than sequences x maximum
// length. Blocks are reference-counted so that sequences can share full prefix blocks, and full blocks
// can be published under their token prefix: a later sequence starting with the same tokens reuses them
// (prefix caching). A published block no sequence holds stays cached until the pool needs it, least
// recently used first.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace lk {

constexpr int kKvBlockSlots = 16;  // slots per block (the CPU backend's key block: cpu::kKeyBlock)

// A block as a prefix-index entry names it: its id and the allocation it is in (ids are reused).
struct BlockRef {
    int32_t block = -1;
    uint32_t generation = 0;
};

class KvBlockPool {
public:
    explicit KvBlockPool(int32_t n_blocks);

    int32_t size() const { return static_cast<int32_t>(refs_.size()); }
    int32_t free_blocks() const { return static_cast<int32_t>(free_.size()); }
    // Published blocks no sequence holds: allocate() takes them back when no free block is left.
    int32_t cached_blocks() const { return n_idle_cached_; }
    int32_t refs(int32_t block) const { return refs_[block]; }
    bool published(int32_t block) const { return key_of_[block] != nullptr; }

    // A block with one reference, or -1 when none is free or cached.
    int32_t allocate();
    // One more holder of a block in use (a sequence sharing another's prefix).
    void retain(int32_t block);
    // One holder less; the block is free again when none is left (cached if published).
    void release(int32_t block);

    // Publishes a full block held by a sequence: its slots hold the K/V of tokens (kKvBlockSlots of them)
    // after the prefix whose last block is parent (an empty BlockRef for the first block). Returns the
    // block the index holds for that prefix: this one, or an earlier block with the same contents.
    BlockRef publish(BlockRef parent, const int32_t* tokens, int32_t block);
    // The published block holding tokens after parent's prefix, retained for the caller; an empty
    // BlockRef when there is none.
    BlockRef acquire_published(BlockRef parent, const int32_t* tokens);
    BlockRef ref(int32_t block) const { return BlockRef{block, generations_[block]}; }

private:
    struct Key {
        int32_t parent;
        uint32_t parent_generation;
        std::array<int32_t, kKvBlockSlots> tokens;
        bool operator==(const Key& other) const = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key& key) const;
    };
    void lru_unlink(int32_t block);
    void lru_push(int32_t block);

    std::vector<int32_t> refs_;
    std::vector<uint32_t> generations_;  // bumped whenever a block is handed out afresh
    std::vector<int32_t> free_;          // a stack: the next block handed out is at the back
    std::unordered_map<Key, BlockRef, KeyHash> index_;
    std::vector<const Key*> key_of_;              // per block: its index key while published
    std::vector<int32_t> lru_prev_, lru_next_;    // idle published blocks, oldest at lru_head_
    int32_t lru_head_ = -1, lru_tail_ = -1, n_idle_cached_ = 0;
};

// Which blocks a sequence's slots live in: slot s is slot s % kKvBlockSlots of block blocks[s / kKvBlockSlots].
class BlockTable {
public:
    // Grows the table to cover slots [0, slots); false (the table unchanged) when the pool runs out.
    bool reserve(int64_t slots, KvBlockPool& pool);
    // Gives back every block (the table is empty after), last block first so that a published prefix is
    // evicted from its end.
    void release_all(KvBlockPool& pool);
    // Gives back the blocks holding no slot below slots.
    void release_from(int64_t slots, KvBlockPool& pool);
    // Appends a block the caller holds a reference to (a shared prefix block).
    void append(int32_t block) { blocks_.push_back(block); }
    // Puts a block in place of logical block i (copy-on-write), taking over the caller's reference; the old
    // block's reference is given back.
    void replace(int32_t i, int32_t block, KvBlockPool& pool);

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
