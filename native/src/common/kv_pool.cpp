#include "kv_pool.h"

#include <stdexcept>

namespace lk {

namespace testing {
bool scatter_kv_blocks = false;
}

KvBlockPool::KvBlockPool(int32_t n_blocks) : refs_(n_blocks, 0) {
    free_.reserve(n_blocks);
    // The stack's back is handed out first: ascending block order unless the tests scatter it.
    for (int32_t b = 0; b < n_blocks; ++b) free_.push_back(testing::scatter_kv_blocks ? b : n_blocks - 1 - b);
}

int32_t KvBlockPool::allocate() {
    if (free_.empty()) return -1;
    const int32_t block = free_.back();
    free_.pop_back();
    refs_[block] = 1;
    return block;
}

void KvBlockPool::retain(int32_t block) {
    if (refs_[block] <= 0) throw std::logic_error("retain of a free KV block");
    ++refs_[block];
}

void KvBlockPool::release(int32_t block) {
    if (refs_[block] <= 0) throw std::logic_error("release of a free KV block");
    if (--refs_[block] == 0) free_.push_back(block);
}

bool BlockTable::reserve(int64_t slots, KvBlockPool& pool) {
    const int64_t needed = (slots + kKvBlockSlots - 1) / kKvBlockSlots;
    const size_t before = blocks_.size();
    while (static_cast<int64_t>(blocks_.size()) < needed) {
        const int32_t block = pool.allocate();
        if (block < 0) {
            for (size_t i = before; i < blocks_.size(); ++i) pool.release(blocks_[i]);
            blocks_.resize(before);
            return false;
        }
        blocks_.push_back(block);
    }
    return true;
}

void BlockTable::release_from(int64_t slots, KvBlockPool& pool) {
    const int64_t keep = (slots + kKvBlockSlots - 1) / kKvBlockSlots;
    while (static_cast<int64_t>(blocks_.size()) > keep) {
        pool.release(blocks_.back());
        blocks_.pop_back();
    }
}

void BlockTable::release_all(KvBlockPool& pool) {
    for (int32_t block : blocks_) pool.release(block);
    blocks_.clear();
}

}  // namespace lk
