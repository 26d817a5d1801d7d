"""HF transformers baselines on the GPU machine (run by check.sh; needs torch + transformers, no network).

1. stories260K loaded from our model folder: HF's greedy ids against ours (stories260K_greedy.json,
   produced by our CPU backend) -- the same model through an independent implementation.
2. A real shape (default llama2-7b) with random bf16 weights: greedy `generate` tokens/s and HF's
   prompt-lookup decoding, after a prompt of --context tokens.
Writes one JSON object to --out.
"""
import argparse
import json
import pathlib
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = pathlib.Path(__file__).resolve().parents[2]


def read_shapes():
    """models/shapes.tsv, the one table of model shapes, as LlamaConfig arguments by name."""
    shapes = {}
    for line in (ROOT / "models/shapes.tsv").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, vocab, hidden, ffn, layers, heads, kv_heads, max_positions, theta, tied = line.split("\t")
        shapes[name] = dict(vocab_size=int(vocab), hidden_size=int(hidden), intermediate_size=int(ffn),
                            num_hidden_layers=int(layers), num_attention_heads=int(heads),
                            num_key_value_heads=int(kv_heads), max_position_embeddings=int(max_positions),
                            rope_theta=float(theta), tie_word_embeddings=tied == "1")
    return shapes


SHAPES = read_shapes()


def stories_check():
    golden = json.loads((ROOT / "bench/gpu/stories260K_greedy.json").read_text())
    model = LlamaForCausalLM.from_pretrained(ROOT / "models/stories260K", dtype=torch.float32).cuda().eval()
    ids = torch.tensor([golden["prompt_ids"]], device="cuda")
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=len(golden["greedy_ids"]), do_sample=False, eos_token_id=None)
    hf = out[0, ids.shape[1]:].tolist()
    ours = golden["greedy_ids"]
    agree = next((i for i, (a, b) in enumerate(zip(hf, ours)) if a != b), min(len(hf), len(ours)))
    return {"tokens_compared": min(len(hf), len(ours)), "identical_prefix": agree, "identical": hf == ours}


def timed_generate(model, ids, new_tokens, **kwargs):
    torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, **kwargs)
    torch.cuda.synchronize()
    return time.perf_counter() - start, out.shape[1] - ids.shape[1]


def shape_baseline(shape, context, new_tokens):
    config = LlamaConfig(**SHAPES[shape], rms_norm_eps=1e-5)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    ids = torch.randint(0, config.vocab_size, (1, context), device="cuda")
    timed_generate(model, ids, 4)  # warm-up
    # Decode time per token: a long generation minus a one-token generation (which is the prefill).
    prefill, _ = timed_generate(model, ids, 1)
    total, produced = timed_generate(model, ids, new_tokens)
    greedy_ms = (total - prefill) / (produced - 1) * 1e3
    lookup_total, lookup_produced = timed_generate(model, ids, new_tokens, prompt_lookup_num_tokens=10)
    lookup_ms = (lookup_total - prefill) / (lookup_produced - 1) * 1e3
    return {"shape": shape, "context": context, "new_tokens": new_tokens, "greedy_ms_per_token": greedy_ms,
            "greedy_tokens_per_second": 1e3 / greedy_ms, "prompt_lookup_ms_per_token": lookup_ms,
            "prompt_lookup_tokens_per_second": 1e3 / lookup_ms, "torch": torch.__version__,
            "device": torch.cuda.get_device_name()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="llama2-7b", choices=sorted(SHAPES))
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = {"stories260K": stories_check(), "baseline": shape_baseline(args.shape, args.context, args.new_tokens)}
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
