#include "kv_pool.h"

#include <stdexcept>

namespace lk {

namespace testing {
bool scatter_kv_blocks = false;
}

KvBlockPool::KvBlockPool(int32_t n_blocks)
    : refs_(n_blocks, 0), generations_(n_blocks, 0), key_of_(n_blocks, nullptr), lru_prev_(n_blocks, -1), lru_next_(n_blocks, -1) {
    free_.reserve(n_blocks);
    // The stack's back is handed out first: ascending block order unless the tests scatter it.
    for (int32_t b = 0; b < n_blocks; ++b) free_.push_back(testing::scatter_kv_blocks ? b : n_blocks - 1 - b);
}

std::size_t KvBlockPool::KeyHash::operator()(const Key& key) const {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t(uint32_t(key.parent)) << 32 | key.parent_generation);
    for (int32_t token : key.tokens) h = (h ^ uint32_t(token)) * 0x100000001b3ull;
    return static_cast<std::size_t>(h ^ (h >> 29));
}

int32_t KvBlockPool::allocate() {
    int32_t block;
    if (!free_.empty()) {
        block = free_.back();
        free_.pop_back();
    } else if (lru_head_ >= 0) {
        // Evict the least recently used cached block: its index entry goes, and the prefixes that named it
        // as parent can no longer match (its generation changes).
        block = lru_head_;
        lru_unlink(block);
        index_.erase(*key_of_[block]);
        key_of_[block] = nullptr;
    } else {
        return -1;
    }
    ++generations_[block];
    refs_[block] = 1;
    return block;
}

void KvBlockPool::retain(int32_t block) {
    if (refs_[block] <= 0) throw std::logic_error("retain of a free KV block");
    ++refs_[block];
}

void KvBlockPool::release(int32_t block) {
    if (refs_[block] <= 0) throw std::logic_error("release of a free KV block");
    if (--refs_[block] > 0) return;
    if (published(block))
        lru_push(block);
    else
        free_.push_back(block);
}

BlockRef KvBlockPool::publish(BlockRef parent, const int32_t* tokens, int32_t block) {
    if (refs_[block] <= 0) throw std::logic_error("publish of a free KV block");
    Key key{parent.block, parent.generation, {}};
    for (int i = 0; i < kKvBlockSlots; ++i) key.tokens[i] = tokens[i];
    const auto [it, inserted] = index_.try_emplace(key, ref(block));
    if (inserted) key_of_[block] = &it->first;
    return it->second;
}

BlockRef KvBlockPool::acquire_published(BlockRef parent, const int32_t* tokens) {
    Key key{parent.block, parent.generation, {}};
    for (int i = 0; i < kKvBlockSlots; ++i) key.tokens[i] = tokens[i];
    const auto it = index_.find(key);
    if (it == index_.end()) return {};
    const int32_t block = it->second.block;
    if (refs_[block] == 0) lru_unlink(block);
    ++refs_[block];
    return it->second;
}

void KvBlockPool::lru_unlink(int32_t block) {
    const int32_t prev = lru_prev_[block], next = lru_next_[block];
    (prev >= 0 ? lru_next_[prev] : lru_head_) = next;
    (next >= 0 ? lru_prev_[next] : lru_tail_) = prev;
    lru_prev_[block] = lru_next_[block] = -1;
    --n_idle_cached_;
}

void KvBlockPool::lru_push(int32_t block) {
    lru_prev_[block] = lru_tail_;
    lru_next_[block] = -1;
    (lru_tail_ >= 0 ? lru_next_[lru_tail_] : lru_head_) = block;
    lru_tail_ = block;
    ++n_idle_cached_;
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

void BlockTable::release_all(KvBlockPool& pool) { release_from(0, pool); }

void BlockTable::replace(int32_t i, int32_t block, KvBlockPool& pool) {
    pool.release(blocks_[i]);
    blocks_[i] = block;
}

}  // namespace lk
