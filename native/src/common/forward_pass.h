// The forward pass's layer loop and stage bookkeeping, written once for both backends. A backend supplies
// its stages as members of a pass type (a template parameter, so each stage is a direct call, not a virtual
// one); each stage runs inside its StageProfile scope, which is what lk_context_get_profile reports.
#pragma once

#include <cstdint>

#include "lookahead.h"
#include "stage_profile.h"

namespace lk {

// Pass provides embed(), attention_inputs(layer), attention(layer), attention_output(layer),
// feed_forward(layer), feed_forward_down(layer) and output(first): the stages named in stage_profile.h,
// each over the pass's n nodes; output computes the logits of nodes first..n-1.
template <typename Pass>
void run_forward_pass(Pass& pass, StageProfile& profile, int n_layers, int n, int32_t logits_mode) {
    {
        StageProfile::Scope stage(profile, Stage::kEmbed);
        pass.embed();
    }
    for (int l = 0; l < n_layers; ++l) {
        {
            StageProfile::Scope stage(profile, Stage::kAttentionInputs);
            pass.attention_inputs(l);
        }
        {
            StageProfile::Scope stage(profile, Stage::kAttention);
            pass.attention(l);
        }
        {
            StageProfile::Scope stage(profile, Stage::kAttentionOutput);
            pass.attention_output(l);  // adds to the residual stream
        }
        {
            StageProfile::Scope stage(profile, Stage::kFeedForward);
            pass.feed_forward(l);
        }
        {
            StageProfile::Scope stage(profile, Stage::kFeedForwardDown);
            pass.feed_forward_down(l);  // adds to the residual stream
        }
    }
    if (logits_mode == LK_LOGITS_NONE) return;
    StageProfile::Scope stage(profile, Stage::kOutput);
    pass.output(logits_mode == LK_LOGITS_LAST ? n - 1 : 0);
}

}  // namespace lk
