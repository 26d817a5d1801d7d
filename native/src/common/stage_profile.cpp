#include "stage_profile.h"

namespace lk {
namespace {

constexpr const char* kStageNames[] = {"embed",        "attention_inputs",  "attention", "attention_output", "feed_forward",
                                       "feed_forward_down", "output", "verify",    "compact",          "device"};
static_assert(sizeof(kStageNames) / sizeof(kStageNames[0]) == static_cast<int>(Stage::kCount));

}  // namespace

int32_t StageProfile::copy(lk_stage_time* out, int32_t capacity) const {
    const int32_t count = static_cast<int32_t>(Stage::kCount);
    for (int32_t i = 0; i < count && i < capacity; ++i) out[i] = lk_stage_time{kStageNames[i], totals_[i].calls, totals_[i].seconds * 1e3};
    return count;
}

}  // namespace lk
