# Emulates the index logic of attention_shared_kernel and attention_merge_kernel
# (native/src/cuda/attention.cu, LK_CUDA_ATTENTION=shared) in float64: node groups, chunks, 64-position
# tiles of shared positions staged in shared memory, per-node positions read from the cache through the
# ancestor lists, records and their merge; checked against a direct softmax over each node's visible
# positions, chains and trees, n_past given or read from device memory (every chunk launched). A
# transcription of the kernels for work without a GPU: keep it in step with attention.cu. Needs numpy.
#   python3 bench/gpu/emulation/attention_shared.py
import random

import numpy as np

kThreads, kSharedTile, kMaxPairs = 256, 64, 32
FLT_MAX = np.finfo(np.float32).max

def plan(n_ctx, hd):
    chunk = max(64, ((n_ctx + 31) // 32 + 63) // 64 * 64)
    p = dict(chunk=chunk, max_chunks=(n_ctx + chunk - 1) // chunk, npb=max(1, min(64, kMaxPairs * kThreads // max(1, hd))))
    def bytes_(npb): return (npb * hd + kSharedTile * (hd + 1) + npb * chunk + 2 * npb) * 4
    while p['npb'] > 1 and bytes_(p['npb']) > 100 * 1024: p['npb'] //= 2
    return p

def slot(n_past, lst, p):
    if p < n_past: return p
    j = p - n_past
    return n_past + (lst[j] if lst is not None else j)

def stage_shared_positions(cache, t0, width, shared_end, kv_dim, kv_offset, hd):
    tile = np.full(kSharedTile * (hd + 1), np.nan)  # unstaged entries stay NaN: reading one fails the run
    for e in range(width * hd):
        p = t0 + e // hd
        if p < shared_end: tile[(e // hd) * (hd + 1) + e % hd] = cache[p * kv_dim + kv_offset + e % hd]
    return tile

def kernel(q, keys, values, n_past, depths, offsets, ancestors, n, n_heads, group, hd, scale, P, scratch, grid_y):
    kv_dim = (n_heads // group) * hd
    for head in range(n_heads):
        for chunk in range(grid_y):
            for z in range((n + P['npb'] - 1) // P['npb']):
                first = z * P['npb']; nodes = min(P['npb'], n - first)
                begin = chunk * P['chunk']; kv_offset = (head // group) * hd
                shared_end = n_past if ancestors is not None else 2**31 - 1
                block_end = begin
                for i in range(nodes): block_end = max(block_end, min(begin + P['chunk'], n_past + depths[first + i] + 1))
                if block_end <= begin: continue
                row = hd + 1
                q_s = np.full(P['npb'] * hd, np.nan)
                for e in range(nodes * hd): q_s[e] = q[((first + e // hd) * n_heads + head) * hd + e % hd]
                scores = np.full(P['npb'] * P['chunk'], np.nan)
                t0 = begin
                while t0 < block_end:
                    width = min(kSharedTile, block_end - t0)
                    tile = stage_shared_positions(keys, t0, width, shared_end, kv_dim, kv_offset, hd)
                    for e in range(nodes * width):
                        i = e // width; p = t0 + e % width; node = first + i
                        if p >= n_past + depths[node] + 1: continue
                        lst = ancestors[offsets[node]:] if ancestors is not None else None
                        if p < shared_end: k = tile[(p - t0) * row:(p - t0) * row + hd]
                        else: s = slot(n_past, lst, p); k = keys[s * kv_dim + kv_offset: s * kv_dim + kv_offset + hd]
                        qi = q_s[i * hd:(i + 1) * hd]
                        assert not np.isnan(k).any() and not np.isnan(qi).any()
                        scores[i * P['chunk'] + (p - begin)] = float(np.dot(qi, k)) * scale
                    t0 += kSharedTile
                stats = np.zeros(2 * P['npb'])
                for i in range(nodes):
                    end = min(begin + P['chunk'], n_past + depths[first + i] + 1)
                    si = i * P['chunk']
                    m = -FLT_MAX
                    for p in range(begin, end): m = max(m, scores[si + p - begin])
                    s = 0.0
                    for p in range(begin, end):
                        e = np.exp(scores[si + p - begin] - m); scores[si + p - begin] = e; s += e
                    stats[2 * i] = m; stats[2 * i + 1] = s
                acc = np.zeros((kThreads, kMaxPairs))
                t0 = begin
                while t0 < block_end:
                    width = min(kSharedTile, block_end - t0)
                    tile = stage_shared_positions(values, t0, width, shared_end, kv_dim, kv_offset, hd)
                    for tid in range(kThreads):
                        for k in range(kMaxPairs):
                            e = tid + k * kThreads
                            if e >= nodes * hd: continue
                            i, d = e // hd, e % hd; node = first + i
                            end = min(t0 + width, n_past + depths[node] + 1)
                            lst = ancestors[offsets[node]:] if ancestors is not None else None
                            for p in range(t0, end):
                                v = tile[(p - t0) * row + d] if p < shared_end else values[slot(n_past, lst, p) * kv_dim + kv_offset + d]
                                w = scores[i * P['chunk'] + p - begin]
                                assert not np.isnan(v) and not np.isnan(w)
                                acc[tid, k] += w * v
                    t0 += kSharedTile
                for tid in range(kThreads):
                    for k in range(kMaxPairs):
                        e = tid + k * kThreads
                        if e >= nodes * hd: continue
                        i, d = e // hd, e % hd; node = first + i
                        if begin >= n_past + depths[node] + 1: continue
                        rec = ((node * n_heads + head) * P['max_chunks'] + chunk) * (hd + 2)
                        if d == 0: scratch[rec] = stats[2 * i]; scratch[rec + 1] = stats[2 * i + 1]
                        scratch[rec + 2 + d] = acc[tid, k]

def merge(n_past, depths, n, n_heads, hd, P, scratch):
    out = np.full(n * n_heads * hd, np.nan)
    for b in range(n * n_heads):
        node = b // n_heads
        chunks = (n_past + depths[node] + 1 + P['chunk'] - 1) // P['chunk']
        base = b * P['max_chunks'] * (hd + 2)
        recs = [scratch[base + c * (hd + 2): base + (c + 1) * (hd + 2)] for c in range(chunks)]
        assert all(not np.isnan(r).any() for r in recs), "unwritten record"
        m = max(r[0] for r in recs)
        total = sum(r[1] * np.exp(r[0] - m) for r in recs)
        for i in range(hd): out[b * hd + i] = sum(r[2 + i] * np.exp(r[0] - m) for r in recs) / total
    return out

rng = np.random.default_rng(3); prng = random.Random(4)
for (heads, kvh, hd, n_ctx, n_past, chain, n) in [(2, 2, 8, 512, 0, False, 9), (2, 1, 16, 600, 70, False, 9), (2, 2, 8, 300, 65, True, 9),
                                                  (1, 1, 8, 2048, 150, False, 70), (1, 1, 128, 2048, 130, True, 70), (2, 2, 256, 1024, 100, False, 20), (1, 1, 16, 5000, 400, False, 12), (1, 1, 16, 5000, 330, True, 12)]:
    parents = [-1] + [(i - 1 if chain else prng.randint(0, i - 1)) for i in range(1, n)]
    depths = [0] * n
    for i in range(1, n): depths[i] = depths[parents[i]] + 1
    offsets = []; ancestors = []
    for i in range(n):
        chainl = []; j = i
        while j >= 0: chainl.append(j); j = parents[j]
        offsets.append(len(ancestors)); ancestors += sorted(chainl)
    P = plan(n_ctx, hd)
    slots = n_past + n; kv_dim = kvh * hd; group = heads // kvh
    q = rng.uniform(-2, 2, n * heads * hd); keys = rng.uniform(-1, 1, slots * kv_dim); values = rng.uniform(-1, 1, slots * kv_dim)
    scale = 1 / np.sqrt(hd)
    for device in [False, True]:
        scratch = np.full(n * heads * P['max_chunks'] * (hd + 2), np.nan)
        max_depth = max(depths)
        grid_y = P['max_chunks'] if device else (n_past + max_depth + 1 + P['chunk'] - 1) // P['chunk']
        kernel(q, keys, values, n_past, depths, offsets, None if chain else ancestors, n, heads, group, hd, scale, P, scratch, grid_y)
        out = merge(n_past, depths, n, heads, hd, P, scratch)
        for node in range(n):
            vis = list(range(n_past)) + [n_past + a for a in ancestors[offsets[node]:offsets[node] + depths[node] + 1]]
            for h in range(heads):
                qh = q[(node * heads + h) * hd:(node * heads + h + 1) * hd]; off = (h // group) * hd
                sc = np.array([np.dot(qh, keys[s * kv_dim + off: s * kv_dim + off + hd]) * scale for s in vis])
                w = np.exp(sc - sc.max()); w /= w.sum()
                want = sum(w[t] * values[s * kv_dim + off: s * kv_dim + off + hd] for t, s in enumerate(vis))
                got = out[(node * heads + h) * hd:(node * heads + h + 1) * hd]
                assert np.allclose(got, want, atol=1e-9), (heads, hd, n_past, chain, n, node, h, np.abs(got - want).max())
    print("ok", heads, kvh, hd, n_ctx, n_past, chain, n, P, flush=True)
print("all ok")
