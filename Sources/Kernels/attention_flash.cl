// attention_flash.cl — scaled dot-product attention as tiled kernels, FlashAttention-2 style (Dao 2023):
// the scores S and probabilities P are never written to global memory.
//
// Per batch·head bh (leading dimensions flattened into BH):
//   Q [BH, Tq, D], K [BH, Tk, D], V [BH, Tk, Dv], O [BH, Tq, Dv], L [BH, Tq], Dl [BH, Tq]
//   S = scale · Q·Kᵀ,  P = softmax over keys,  O = P·V,  L[i] = log Σ_j exp(S[i, j])  (the row's logsumexp)
// Forward (online softmax): each query row keeps a running max m and sum l over key tiles,
//   m' = max(m, max_j S[i, j]),  l' = l·e^(m − m') + Σ_j e^(S[i, j] − m'),  o' = o·e^(m − m') + Σ_j e^(S[i, j] − m')·V[j]
//   and stores O = o / l and L = m + log l.
// Backward from (O, L), P recomputed tile by tile as P = exp(S − L):
//   Dl[i] = Σ_c dO[i, c]·O[i, c]   (= Σ_j P[i, j]·dP[i, j]),   dP = dO·Vᵀ,   dS = P ⊙ (dP − Dl)
//   dQ = scale · dS·K  (one kernel over query tiles),  dK = scale · dSᵀ·Q,  dV = Pᵀ·dO  (one kernel over key tiles):
//   no atomics, every output row is owned by one work item.
//
// Build options (all required; one program per option string):
//   FA_R   rows per work-group = work-group size (query rows in forward and dQ, key rows in dK/dV)
//   FA_T   rows of the other operand staged in local memory per tile (keys in forward and dQ, queries in dK/dV)
//   FA_D, FA_DV   the head dimensions D and Dv, exactly (loops over them are unrolled; accumulators are registers)
// Launch geometry of the three tiled kernels: global [ceil(rows / FA_R)·FA_R, BH], local [FA_R, 1].
// Work items past the last row load a valid row, take part in every barrier and store nothing.

#if !defined(FA_R) || !defined(FA_T) || !defined(FA_D) || !defined(FA_DV)
#error "attention_flash.cl needs -DFA_R, -DFA_T, -DFA_D and -DFA_DV"
#endif

// Own rows kept in local memory use a row stride of length + 1, so that work items reading their own rows
// column by column hit different banks.
#define FA_DP (FA_D + 1)
#define FA_DVP (FA_DV + 1)

// Copies rows [r0, r0 + n) of X [rows, len] (row stride len) into dst [FA_T or FA_R][ld]; rows past n become 0.
// All work items of the group take part (count = number of destination rows).
#define FA_STAGE(dst, ld, X, len, r0, n, count)                                  \
    for (int e_ = (int)get_local_id(0); e_ < (count) * (len); e_ += FA_R) {      \
        const int r_ = e_ / (len), c_ = e_ - r_ * (len);                          \
        (dst)[r_ * (ld) + c_] = r_ < (n) ? (X)[(size_t)((r0) + r_) * (len) + c_] : 0.0f; \
    }

// The backward's shared recomputation for one (query row, key row) pair, used with the operands' roles swapped by
// the dQ and the dK/dV kernels: s = q·k, dp = dO_row·v, p = exp(scale·s − L_row), ds = p·(dp − D_row)
// (FlashAttention-2's dS = P ⊙ (dP − D)). q, k: FA_D floats; g (the dO row), v: FA_DV floats; any address space.
#define FA_P_DS(qv, kv, gv, vv, l, dl, p, ds) {                                       \
        float s_ = 0.0f, dp_ = 0.0f;                                                  \
        _Pragma("unroll") for (int d_ = 0; d_ < FA_D; ++d_) s_ = fma((qv)[d_], (kv)[d_], s_);   \
        _Pragma("unroll") for (int c_ = 0; c_ < FA_DV; ++c_) dp_ = fma((gv)[c_], (vv)[c_], dp_); \
        (p) = exp(scale * s_ - (l));                                                  \
        (ds) = (p) * (dp_ - (dl));                                                    \
    }

// O and L. Q, K, V, O as above; L [BH, Tq].
__kernel __attribute__((reqd_work_group_size(FA_R, 1, 1)))
void attention_flash_forward(__global float* O, __global float* L,
                             __global const float* Q, __global const float* K, __global const float* V,
                             int Tq, int Tk, float scale) {
    __local float ks[FA_T * FA_D];
    __local float vs[FA_T * FA_DV];
    const int i = get_global_id(0), bh = get_global_id(1);
    const int row = min(i, Tq - 1);
    __global const float* Kb = K + (size_t)bh * Tk * FA_D;
    __global const float* Vb = V + (size_t)bh * Tk * FA_DV;

    float q[FA_D], o[FA_DV];
    __global const float* qrow = Q + ((size_t)bh * Tq + row) * FA_D;
#pragma unroll
    for (int d = 0; d < FA_D; ++d) q[d] = qrow[d];
#pragma unroll
    for (int c = 0; c < FA_DV; ++c) o[c] = 0.0f;
    float m = -INFINITY, l = 0.0f;

    for (int k0 = 0; k0 < Tk; k0 += FA_T) {
        const int nk = min(FA_T, Tk - k0);
        barrier(CLK_LOCAL_MEM_FENCE);
        FA_STAGE(ks, FA_D, Kb, FA_D, k0, nk, FA_T)
        FA_STAGE(vs, FA_DV, Vb, FA_DV, k0, nk, FA_T)
        barrier(CLK_LOCAL_MEM_FENCE);
        float s[FA_T];
        float mt = m;
#pragma unroll
        for (int j = 0; j < FA_T; ++j) {
            float acc = 0.0f;
#pragma unroll
            for (int d = 0; d < FA_D; ++d) acc = fma(q[d], ks[j * FA_D + d], acc);
            s[j] = j < nk ? scale * acc : -INFINITY;
            mt = fmax(mt, s[j]);
        }
        // mt is finite (nk ≥ 1); on the first tile m = −∞ and the correction is 0.
        const float corr = exp(m - mt);
        l *= corr;
#pragma unroll
        for (int c = 0; c < FA_DV; ++c) o[c] *= corr;
#pragma unroll
        for (int j = 0; j < FA_T; ++j) {
            const float p = exp(s[j] - mt);   // 0 for keys past Tk
            l += p;
#pragma unroll
            for (int c = 0; c < FA_DV; ++c) o[c] = fma(p, vs[j * FA_DV + c], o[c]);
        }
        m = mt;
    }
    if (i < Tq) {
        const float inv = 1.0f / l;
        __global float* orow = O + ((size_t)bh * Tq + i) * FA_DV;
#pragma unroll
        for (int c = 0; c < FA_DV; ++c) orow[c] = o[c] * inv;
        L[(size_t)bh * Tq + i] = m + log(l);
    }
}

// Dl[r] = Σ_c dO[r, c]·O[r, c] over all BH·Tq rows. Global size: [BH·Tq].
__kernel void attention_flash_backward_delta(__global float* Dl, __global const float* dO, __global const float* O,
                                             int rows) {
    const int r = get_global_id(0);
    if (r >= rows) return;
    __global const float* g = dO + (size_t)r * FA_DV;
    __global const float* o = O + (size_t)r * FA_DV;
    float acc = 0.0f;
    for (int c = 0; c < FA_DV; ++c) acc = fma(g[c], o[c], acc);
    Dl[r] = acc;
}

// dQ = scale · dS·K over key tiles; each work item owns one query row.
__kernel __attribute__((reqd_work_group_size(FA_R, 1, 1)))
void attention_flash_backward_q(__global float* dQ,
                                __global const float* Q, __global const float* K, __global const float* V,
                                __global const float* dO, __global const float* L, __global const float* Dl,
                                int Tq, int Tk, float scale) {
    __local float ks[FA_T * FA_D];
    __local float vs[FA_T * FA_DV];
    __local float gs[FA_R * FA_DVP];   // this group's dO rows (own rows)
    const int t = get_local_id(0), i = get_global_id(0), bh = get_global_id(1);
    const int i0 = get_group_id(0) * FA_R;
    const int row = min(i, Tq - 1);
    __global const float* Kb = K + (size_t)bh * Tk * FA_D;
    __global const float* Vb = V + (size_t)bh * Tk * FA_DV;
    FA_STAGE(gs, FA_DVP, dO + (size_t)bh * Tq * FA_DV, FA_DV, i0, min(FA_R, Tq - i0), FA_R)

    float q[FA_D], dq[FA_D];
    __global const float* qrow = Q + ((size_t)bh * Tq + row) * FA_D;
#pragma unroll
    for (int d = 0; d < FA_D; ++d) { q[d] = qrow[d]; dq[d] = 0.0f; }
    const float li = L[(size_t)bh * Tq + row], di = Dl[(size_t)bh * Tq + row];
    __local const float* g = gs + t * FA_DVP;

    for (int k0 = 0; k0 < Tk; k0 += FA_T) {
        const int nk = min(FA_T, Tk - k0);
        barrier(CLK_LOCAL_MEM_FENCE);
        FA_STAGE(ks, FA_D, Kb, FA_D, k0, nk, FA_T)
        FA_STAGE(vs, FA_DV, Vb, FA_DV, k0, nk, FA_T)
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int j = 0; j < nk; ++j) {
            float p, ds;
            FA_P_DS(q, ks + j * FA_D, g, vs + j * FA_DV, li, di, p, ds)
#pragma unroll
            for (int d = 0; d < FA_D; ++d) dq[d] = fma(ds, ks[j * FA_D + d], dq[d]);
        }
    }
    if (i < Tq) {
        __global float* out = dQ + ((size_t)bh * Tq + i) * FA_D;
#pragma unroll
        for (int d = 0; d < FA_D; ++d) out[d] = scale * dq[d];
    }
}

// dK = scale · dSᵀ·Q (want_dk) and dV = Pᵀ·dO (want_dv) over query tiles; each work item owns one key row.
// Unused output pointers may alias any valid buffer.
__kernel __attribute__((reqd_work_group_size(FA_R, 1, 1)))
void attention_flash_backward_kv(__global float* dK, __global float* dV,
                                 __global const float* Q, __global const float* K, __global const float* V,
                                 __global const float* dO, __global const float* L, __global const float* Dl,
                                 int Tq, int Tk, float scale, int want_dk, int want_dv) {
    __local float qs[FA_T * FA_D];
    __local float gs[FA_T * FA_DV];
    __local float ls[FA_T], dls[FA_T];
    __local float kown[FA_R * FA_DP];
    __local float vown[FA_R * FA_DVP];
    const int t = get_local_id(0), j = get_global_id(0), bh = get_global_id(1);
    const int j0 = get_group_id(0) * FA_R;
    const int nown = min(FA_R, Tk - j0);
    FA_STAGE(kown, FA_DP, K + (size_t)bh * Tk * FA_D, FA_D, j0, nown, FA_R)
    FA_STAGE(vown, FA_DVP, V + (size_t)bh * Tk * FA_DV, FA_DV, j0, nown, FA_R)
    __global const float* Qb = Q + (size_t)bh * Tq * FA_D;
    __global const float* Gb = dO + (size_t)bh * Tq * FA_DV;
    __global const float* Lb = L + (size_t)bh * Tq;
    __global const float* Db = Dl + (size_t)bh * Tq;
    __local const float* kr = kown + t * FA_DP;
    __local const float* vr = vown + t * FA_DVP;

    float dk[FA_D], dv[FA_DV];
#pragma unroll
    for (int d = 0; d < FA_D; ++d) dk[d] = 0.0f;
#pragma unroll
    for (int c = 0; c < FA_DV; ++c) dv[c] = 0.0f;

    for (int q0 = 0; q0 < Tq; q0 += FA_T) {
        const int nq = min(FA_T, Tq - q0);
        barrier(CLK_LOCAL_MEM_FENCE);
        FA_STAGE(qs, FA_D, Qb, FA_D, q0, nq, FA_T)
        FA_STAGE(gs, FA_DV, Gb, FA_DV, q0, nq, FA_T)
        for (int r = t; r < nq; r += FA_R) { ls[r] = Lb[q0 + r]; dls[r] = Db[q0 + r]; }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int r = 0; r < nq; ++r) {
            float p, ds;
            FA_P_DS(qs + r * FA_D, kr, gs + r * FA_DV, vr, ls[r], dls[r], p, ds)
#pragma unroll
            for (int c = 0; c < FA_DV; ++c) dv[c] = fma(p, gs[r * FA_DV + c], dv[c]);
#pragma unroll
            for (int d = 0; d < FA_D; ++d) dk[d] = fma(ds, qs[r * FA_D + d], dk[d]);
        }
    }
    if (j < Tk) {
        if (want_dk) {
            __global float* out = dK + ((size_t)bh * Tk + j) * FA_D;
#pragma unroll
            for (int d = 0; d < FA_D; ++d) out[d] = scale * dk[d];
        }
        if (want_dv) {
            __global float* out = dV + ((size_t)bh * Tk + j) * FA_DV;
#pragma unroll
            for (int c = 0; c < FA_DV; ++c) out[c] = dv[c];
        }
    }
}
