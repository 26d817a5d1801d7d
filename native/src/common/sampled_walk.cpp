#include "sampled_walk.h"

#include "backend.h"

namespace lk {

int32_t SampledWalk::walk(Backend& backend, const Tree& tree, int32_t first, const SampledStep& step, int32_t vocab_size,
                          int32_t* path, int32_t* bonus) {
    // Children as linked lists (lowest index first), and the penalties' counts of the sequence up to the root.
    const int32_t n = tree.size();
    first_child_.assign(n, -1);
    next_sibling_.assign(n, -1);
    for (int32_t c = n - 1; c >= 1; --c) {
        next_sibling_[c] = first_child_[tree.parent(c)];
        first_child_[tree.parent(c)] = c;
    }
    // The committed sequence's counts carry over from the last step; what this step adds (the root, then each
    // level's token) comes off again when it ends.
    if (static_cast<int32_t>(counts_.all.size()) != vocab_size) {
        counts_.reset(vocab_size);
        history_.clear();
    }
    history_.update(step.history, step.n_history, step.n_prompt,
                    [&](const int32_t* tokens, int32_t n, int32_t first_output, int32_t delta) {
                        for (int32_t j = 0; j < n; ++j) counts_.add(tokens[j], j >= first_output, delta);
                    });
    const bool root_is_output = step.n_history >= step.n_prompt;
    struct StepTokens {
        TokenCounts& counts;
        std::vector<int32_t>& tokens;  // the root, then output tokens
        bool root_is_output;
        void add(int32_t token) {
            counts.add(token, !tokens.empty() || root_is_output);
            tokens.push_back(token);
        }
        ~StepTokens() {
            for (size_t j = 0; j < tokens.size(); ++j) counts.add(tokens[j], j > 0 || root_is_output, -1);
            tokens.clear();
        }
    } added{counts_, step_tokens_, root_is_output};
    step_tokens_.reserve(tree.max_depth() + 1);  // so add() cannot throw once a count has changed
    added.add(tree.token(0));

    // Siblings holding the same token see the same history and draw, so they sample the same token (their
    // logits are bit-identical): the walk goes level by level over the set of nodes matching so far,
    // sampling once per level. The deepest matching path then comes from Tree::greedy_path over those
    // samples, the path the CUDA backend takes too.
    sampled_.assign(n, -1);
    level_.assign(1, 0);
    for (int64_t depth = 0; !level_.empty(); ++depth) {
        const uint64_t draw = sampling::draw_bits(step.seed, static_cast<uint64_t>(step.token_index + depth));
        const int32_t token = sampler_.sample(backend.logits(first + level_[0]), vocab_size, step.settings, counts_, draw);
        next_level_.clear();
        for (int32_t node : level_) {
            sampled_[node] = token;
            if (token < 0) continue;
            for (int32_t child = first_child_[node]; child >= 0; child = next_sibling_[child])
                if (tree.token(child) == token) next_level_.push_back(child);
        }
        if (!next_level_.empty()) added.add(token);
        level_.swap(next_level_);
    }
    const int32_t length = tree.greedy_path(sampled_.data(), path);
    *bonus = sampled_[path[length - 1]];
    return length;
}

}  // namespace lk
