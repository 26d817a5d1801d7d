# Emulates the index logic of native/src/cuda/matmul_mma.cu in float64 (the fragments of mma.sync
# m16n8k16 in the PTX layout, the lanes' permuted columns, the shared-memory staging of inputs, stacked
# parts, column slices reduced by the last block to finish, the per-64-input launches, the residual add)
# and checks it against a plain matrix product, for ragged shapes, with blocks finishing in random order.
# For developing the kernel without a GPU: a transcription of the kernel, so keep it in step with
# matmul_mma.cu; it says nothing about the hardware's arithmetic. Needs numpy (Debian: python3-numpy).
#   python3 bench/gpu/emulation/matmul_mma.py
import random

import numpy as np

kWarpsPerBlock, kRowsPerWarp, kInputsPerTile, kMaxTiles, kColumnsPerStep = 8, 16, 8, 8, 64
kTargetWarps, kMaxSlices, kInputsPerLaunch = 16384, 16, 64

def slices(tiles, cols):
    steps = (cols + kColumnsPerStep - 1) // kColumnsPerStep
    return max(1, min(kTargetWarps // tiles, steps, kMaxSlices))

def lane_column(base, t, p):
    return base + (0 if p < 4 else 32) + 8 * t + 2 * (p & 3)

def lane_run(matrix, row, rows, cols, base, t):
    """A lane's 8 column pairs of one row (weights: load_weight_run; inputs: load_input_run), zeros outside."""
    out = []
    for p in range(8):
        at = lane_column(base, t, p)
        lo = matrix[row, at] if row < rows and at < cols else 0.0
        hi = matrix[row, at + 1] if row < rows and at + 1 < cols else 0.0
        out.append((lo, hi))
    return out

kStageRowBytes = 192
def stage_inputs(x, n_x, staged, cols, base, stage):  # stage: float array indexed by byte offset // 2
    for unit in range(staged * 16):
        j, group = unit >> 4, unit & 15
        at = base + 4 * group
        v = [0.0] * 4
        if j < n_x:
            for e in range(4):
                if at + e < cols: v[e] = x[j, at + e]
        off = (j * kStageRowBytes + 8 * group) // 2
        stage[off:off + 4] = v

def read_staged(stage, j, t):
    a = (j * kStageRowBytes + 16 * t) // 2
    b = (j * kStageRowBytes + 64 + 16 * t) // 2
    vals = list(stage[a:a + 8]) + list(stage[b:b + 8])
    return [(vals[2 * p], vals[2 * p + 1]) for p in range(8)]

def mma(acc, A_regs, B_regs):
    # acc[lane] = [c0..c3]; A_regs[lane] = (a0,a1,a2,a3) each a pair; B_regs[lane] = (b0,b1)
    A = np.zeros((16, 16)); B = np.zeros((16, 8)); C = np.zeros((16, 8))
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        a0, a1, a2, a3 = A_regs[lane]
        A[g, 2*t:2*t+2] = a0; A[g+8, 2*t:2*t+2] = a1; A[g, 2*t+8:2*t+10] = a2; A[g+8, 2*t+8:2*t+10] = a3
        b0, b1 = B_regs[lane]
        B[2*t:2*t+2, g] = b0; B[2*t+8:2*t+10, g] = b1
        c = acc[lane]
        C[g, 2*t:2*t+2] = c[0:2]; C[g+8, 2*t:2*t+2] = c[2:4]
    D = C + A @ B
    for lane in range(32):
        g, t = lane >> 2, lane & 3
        acc[lane] = [D[g, 2*t], D[g, 2*t+1], D[g+8, 2*t], D[g+8, 2*t+1]]

def kernel(parts, first_tile, cols, x, n_x, n_slices, accumulate, partial, counters, grid_x, Tiles, Depth, block_order):
    total_tiles = first_tile[-1]
    inputs = min(Tiles * 8, n_x)
    staged_inputs = (inputs + 7) // 8 * 8
    steps = (cols + 63) // 64
    for (bx, slice_) in block_order:
        stage = np.full(Depth * 64 * kStageRowBytes // 2, np.nan)
        first_step, end_step = steps * slice_ // n_slices, steps * (slice_ + 1) // n_slices
        warps = []
        for w in range(kWarpsPerBlock):
            tile = bx * kWarpsPerBlock + w
            active = tile < total_tiles
            p = 0
            while p + 1 < len(parts) and tile >= first_tile[p + 1]: p += 1
            warps.append(dict(tile=tile, active=active, p=p, row0=(tile - first_tile[p]) * 16,
                              acc=[[[0.0] * 4 for _ in range(32)] for _ in range(Tiles)]))
        step0 = first_step
        while step0 < end_step:
            regs = {}
            for wi, W in enumerate(warps):
                if not W['active']: continue
                Wm, rows = parts[W['p']]['W'], parts[W['p']]['W'].shape[0]
                for d in range(Depth):
                    if step0 + d >= end_step: break
                    for lane in range(32):
                        g, t = lane >> 2, lane & 3
                        base = (step0 + d) * 64
                        regs[(wi, d, lane)] = (lane_run(Wm, W['row0'] + g, rows, cols, base, t),
                                               lane_run(Wm, W['row0'] + g + 8, rows, cols, base, t))
            if Tiles > 1:
                stage[:] = np.nan
                for d in range(Depth):
                    if step0 + d < end_step:
                        sub = stage[d * 64 * kStageRowBytes // 2:(d + 1) * 64 * kStageRowBytes // 2]
                        stage_inputs(x, n_x, staged_inputs, cols, (step0 + d) * 64, sub)
            for wi, W in enumerate(warps):
                if not W['active']: continue
                for d in range(Depth):
                    if step0 + d >= end_step: break
                    base = (step0 + d) * 64
                    for i in range(Tiles):
                        if i * 8 >= inputs: continue
                        ins = []
                        for lane in range(32):
                            g, t = lane >> 2, lane & 3
                            if Tiles > 1:
                                sub = stage[d * 64 * kStageRowBytes // 2:(d + 1) * 64 * kStageRowBytes // 2]
                                ins.append(read_staged(sub, i * 8 + g, t))
                            else:
                                ins.append(lane_run(x, i * 8 + g, n_x, cols, base, t))
                        for k in range(4):
                            A_regs = [(regs[(wi, d, l)][0][2*k], regs[(wi, d, l)][1][2*k], regs[(wi, d, l)][0][2*k+1], regs[(wi, d, l)][1][2*k+1]) for l in range(32)]
                            B_regs = [(ins[l][2*k], ins[l][2*k+1]) for l in range(32)]
                            mma(W['acc'][i], A_regs, B_regs)
            step0 += Depth
        # epilogue
        def store(P, row, j, value_sum):
            b = P['bias']
            value = value_sum + b[row] if b is not None else value_sum
            P['y'][j, row] = (P['y'][j, row] + value) if accumulate else value
        if n_slices == 1:
            for W in warps:
                if not W['active']: continue
                P = parts[W['p']]; rows = P['W'].shape[0]
                for i in range(Tiles):
                    if i * 8 >= inputs: continue
                    for lane in range(32):
                        g, t = lane >> 2, lane & 3
                        for e in range(4):
                            row = W['row0'] + g + (8 if e >= 2 else 0)
                            j = i * 8 + 2 * t + (e & 1)
                            if row < rows and j < n_x: store(P, row, j, W['acc'][i][lane][e])
            continue
        padded = total_tiles * 16
        for W in warps:
            if not W['active']: continue
            for i in range(Tiles):
                if i * 8 >= inputs: continue
                for lane in range(32):
                    g, t = lane >> 2, lane & 3
                    for e in range(4):
                        j = i * 8 + 2 * t + (e & 1)
                        r = W['tile'] * 16 + g + (8 if e >= 2 else 0)
                        if j < n_x: partial[(slice_ * n_x + j) * padded + r] = W['acc'][i][lane][e]
        counters[bx] += 1
        if counters[bx] != n_slices: continue
        for W in warps:
            if not W['active']: continue
            P = parts[W['p']]; rows = P['W'].shape[0]
            for lane in range(32):
                for idx in range(lane, 16 * inputs, 32):
                    row = W['row0'] + idx % 16; j = idx // 16
                    if row >= rows: continue
                    at = j * padded + W['tile'] * 16 + idx % 16
                    s = partial[at]
                    assert not np.isnan(s), "unwritten partial"
                    for sl in range(1, n_slices): 
                        v = partial[sl * n_x * padded + at]; assert not np.isnan(v), "unwritten partial"; s += v
                    store(P, row, j, s)
        counters[bx] = 0

def matmul(parts, cols, x, n_x, accumulate, rng):
    first_tile = [0]
    for P in parts: first_tile.append(first_tile[-1] + (P['W'].shape[0] + 15) // 16)
    tiles = first_tile[-1]
    s = slices(tiles, cols)
    grid_x = (tiles + 7) // 8
    partial_size = s * min(n_x, kInputsPerLaunch) * tiles * kRowsPerWarp if s > 1 else 1
    counters = [0] * grid_x
    for first in range(0, n_x, kInputsPerLaunch):
        n = min(kInputsPerLaunch, n_x - first)
        chunk = [dict(W=P['W'], bias=P['bias'], y=P['y'][first:first + n]) for P in parts]
        Tiles, Depth = (1, 4) if n <= kInputsPerTile else (kMaxTiles, 2)
        order = [(bx, sl) for bx in range(grid_x) for sl in range(s)]
        rng.shuffle(order)  # blocks finish in any order
        partial = np.full(partial_size, np.nan)
        kernel(chunk, first_tile, cols, x[first:first + n], n, s, accumulate, partial, counters, grid_x, Tiles, Depth, order)
        assert all(c == 0 for c in counters)
    return s

rng = np.random.default_rng(1)
prng = random.Random(2)
cases = 0
for cols in [40, 64, 72, 777, 200, 2048]:
    for rows_list in [[37], [4100 // 40, 37, 130], [20, 9]]:
        for n_x in [1, 5, 9, 70]:
            if cols == 2048 and n_x == 70 and len(rows_list) == 3: continue
            x = rng.integers(-8, 8, size=(n_x, cols)).astype(float) / 8
            parts = []
            for rows in rows_list:
                W = rng.integers(-8, 8, size=(rows, cols)).astype(float) / 16
                bias = rng.integers(-8, 8, size=rows).astype(float) if rng.random() < 0.7 else None
                y0 = rng.integers(-8, 8, size=(n_x, rows)).astype(float)
                parts.append(dict(W=W, bias=bias, y=y0.copy(), y0=y0))
            for accumulate in [False, True]:
                for P in parts: P['y'] = P['y0'].copy()
                s = matmul(parts, cols, x, n_x, accumulate, prng)
                for P in parts:
                    want = x @ P['W'].T + (P['bias'] if P['bias'] is not None else 0)
                    if accumulate: want = want + P['y0']
                    assert np.allclose(P['y'], want, atol=1e-9), (cols, rows_list, n_x, accumulate, np.abs(P['y'] - want).max())
                cases += 1
            print(f"ok cols {cols} rows {rows_list} n_x {n_x} slices {s}", flush=True)
print("all", cases, "cases ok")
