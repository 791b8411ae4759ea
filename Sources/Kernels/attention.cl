// attention.cl — fused scaled dot-product attention, forward and backward.
//
// Per batch·head bh (all leading dimensions flattened into BH):
//   Q [BH, Tq, D], K [BH, Tk, D], V [BH, Tk, Dv], P [BH, Tq, Tk], O [BH, Tq, Dv]
//   S = scale · Q·Kᵀ,  P = softmax over the key axis,  O = P·V
// Backward (P saved by forward):
//   dP = dO·Vᵀ,  dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)),  dQ = dS·K,  dK = dSᵀ·Q,  dV = Pᵀ·dO
//
// Work items own AR rows (query rows in forward and dQ, key rows in dK/dV) of one bh and hold
// AR×16 register blocks as float8 pairs. The products with a transposed operand (Q·Kᵀ, dO·Vᵀ)
// read that operand from a transposed, zero-padded copy [BH, D, Tp] (Tp = Tk rounded up to AJ)
// made by attention_transpose, so every inner step is two vector loads, AR scalar loads and
// 2·AR float8 FMAs. Scores are written straight into the P (or dS) rows, which stay in cache for
// the softmax and the following product; S is never stored separately.

#define AR 4   // rows per work item
#define AJ 16  // columns per register block (the padding multiple of transposed operands)

// out[bh, d, j] = j < T ? in[bh, j, d] : 0 for j < Tp.
// in [BH, T, D], out [BH, D, Tp]. Global size: [Tp, D, BH].
__kernel void attention_transpose(__global float* out, __global const float* in, int T, int D, int Tp) {
    const int j = get_global_id(0), d = get_global_id(1), bh = get_global_id(2);
    if (j >= Tp || d >= D) return;
    out[((size_t)bh * D + d) * Tp + j] = j < T ? in[((size_t)bh * T + j) * D + d] : 0.0f;
}

// Stores alpha·(lo, hi) to s[0 .. n) (n ≤ 16).
inline void att_store16(__global float* s, float8 lo, float8 hi, int n, float alpha) {
    if (n >= AJ) {
        vstore8(lo * alpha, 0, s);
        vstore8(hi * alpha, 1, s);
    } else {
        float tmp[AJ];
        vstore8(lo * alpha, 0, tmp);
        vstore8(hi * alpha, 1, tmp);
        for (int c = 0; c < n; ++c) s[c] = tmp[c];
    }
}

// S[r, j] = alpha · Σ_d X[r, d] · Yt[d, j] for r < nrows, j < T.
// X rows have stride ldx; Yt is [D, Tp] with Tp a multiple of AJ and zero padding; S rows stride lds.
// Rows past nrows load row nrows−1 (valid memory) and are not stored.
inline void att_scores(__global float* S, int lds, int nrows,
                       __global const float* X, int ldx, int D,
                       __global const float* Yt, int Tp, int T, float alpha) {
    __global const float* x0 = X;
    __global const float* x1 = X + (size_t)min(1, nrows - 1) * ldx;
    __global const float* x2 = X + (size_t)min(2, nrows - 1) * ldx;
    __global const float* x3 = X + (size_t)min(3, nrows - 1) * ldx;
    for (int j0 = 0; j0 < T; j0 += AJ) {
        float8 a00 = 0.0f, a01 = 0.0f, a10 = 0.0f, a11 = 0.0f;
        float8 a20 = 0.0f, a21 = 0.0f, a30 = 0.0f, a31 = 0.0f;
        __global const float* y = Yt + j0;
        for (int d = 0; d < D; ++d, y += Tp) {
            const float8 y0 = vload8(0, y), y1 = vload8(1, y);
            const float8 v0 = (float8)(x0[d]), v1 = (float8)(x1[d]);
            const float8 v2 = (float8)(x2[d]), v3 = (float8)(x3[d]);
            a00 = fma(v0, y0, a00); a01 = fma(v0, y1, a01);
            a10 = fma(v1, y0, a10); a11 = fma(v1, y1, a11);
            a20 = fma(v2, y0, a20); a21 = fma(v2, y1, a21);
            a30 = fma(v3, y0, a30); a31 = fma(v3, y1, a31);
        }
        const int n = min(AJ, T - j0);
        att_store16(S + j0, a00, a01, n, alpha);
        if (nrows > 1) att_store16(S + (size_t)lds + j0, a10, a11, n, alpha);
        if (nrows > 2) att_store16(S + (size_t)2 * lds + j0, a20, a21, n, alpha);
        if (nrows > 3) att_store16(S + (size_t)3 * lds + j0, a30, a31, n, alpha);
    }
}

// O[r, c] = Σ_t A[r·a_rs + t·a_cs] · B[t·ldb + c] for r < nrows, c < Dd; O rows stride ldo.
// (a_rs = row length, a_cs = 1 reads rows of A; a_rs = 1, a_cs = row length reads columns: Aᵀ·B.)
inline void att_rows_times_matrix(__global float* O, int ldo, int nrows,
                                  __global const float* A, int a_rs, int a_cs, int T,
                                  __global const float* B, int ldb, int Dd) {
    __global const float* r0 = A;
    __global const float* r1 = A + (size_t)min(1, nrows - 1) * a_rs;
    __global const float* r2 = A + (size_t)min(2, nrows - 1) * a_rs;
    __global const float* r3 = A + (size_t)min(3, nrows - 1) * a_rs;
    for (int c0 = 0; c0 < Dd; c0 += AJ) {
        float8 a00 = 0.0f, a01 = 0.0f, a10 = 0.0f, a11 = 0.0f;
        float8 a20 = 0.0f, a21 = 0.0f, a30 = 0.0f, a31 = 0.0f;
        const int w = min(AJ, Dd - c0);
        __global const float* b = B + c0;
        for (int t = 0; t < T; ++t, b += ldb) {
            float8 b0, b1;
            if (w == AJ) {
                b0 = vload8(0, b);
                b1 = vload8(1, b);
            } else {
                float tmp[AJ];
                for (int c = 0; c < AJ; ++c) tmp[c] = c < w ? b[c] : 0.0f;
                b0 = vload8(0, tmp);
                b1 = vload8(1, tmp);
            }
            const size_t at = (size_t)t * a_cs;
            const float8 p0 = (float8)(r0[at]), p1 = (float8)(r1[at]);
            const float8 p2 = (float8)(r2[at]), p3 = (float8)(r3[at]);
            a00 = fma(p0, b0, a00); a01 = fma(p0, b1, a01);
            a10 = fma(p1, b0, a10); a11 = fma(p1, b1, a11);
            a20 = fma(p2, b0, a20); a21 = fma(p2, b1, a21);
            a30 = fma(p3, b0, a30); a31 = fma(p3, b1, a31);
        }
        att_store16(O + c0, a00, a01, w, 1.0f);
        if (nrows > 1) att_store16(O + (size_t)ldo + c0, a10, a11, w, 1.0f);
        if (nrows > 2) att_store16(O + (size_t)2 * ldo + c0, a20, a21, w, 1.0f);
        if (nrows > 3) att_store16(O + (size_t)3 * ldo + c0, a30, a31, w, 1.0f);
    }
}

// ds[j] = scale · p[j] · (dp[j] − Σ_k p[k]·dp[k]) for j < n (ds may alias dp).
inline void att_ds_row(__global float* ds, __global const float* dp, __global const float* p, int n, float scale) {
    const int n8 = n & ~7;
    float8 d8 = 0.0f;
    for (int j = 0; j < n8; j += 8) d8 = fma(vload8(0, p + j), vload8(0, dp + j), d8);
    float delta = hsum8(d8);
    for (int j = n8; j < n; ++j) delta = fma(p[j], dp[j], delta);
    for (int j = 0; j < n8; j += 8) vstore8(scale * vload8(0, p + j) * (vload8(0, dp + j) - delta), 0, ds + j);
    for (int j = n8; j < n; ++j) ds[j] = scale * p[j] * (dp[j] - delta);
}

// P = softmax(scale · Q·Kᵀ) and, when write_o, O = P·V.
// Kt: K transposed and padded [BH, D, Tkp]. V may alias anything when write_o = 0.
// Global size: [ceil(Tq / AR), BH].
__kernel void attention_forward(__global float* O, __global float* P,
                                __global const float* Q, __global const float* Kt, __global const float* V,
                                int Tq, int Tk, int Tkp, int D, int Dv, float scale, int write_o) {
    const int i0 = get_global_id(0) * AR, bh = get_global_id(1);
    if (i0 >= Tq) return;
    const int nrows = min(AR, Tq - i0);
    __global float* p = P + ((size_t)bh * Tq + i0) * Tk;
    att_scores(p, Tk, nrows, Q + ((size_t)bh * Tq + i0) * D, D, D, Kt + (size_t)bh * D * Tkp, Tkp, Tk, scale);
    for (int r = 0; r < nrows; ++r) softmax_row(p + (size_t)r * Tk, p + (size_t)r * Tk, Tk);
    if (write_o) {
        att_rows_times_matrix(O + ((size_t)bh * Tq + i0) * Dv, Dv, nrows, p, Tk, 1, Tk,
                              V + (size_t)bh * Tk * Dv, Dv, Dv);
    }
}

// dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)) and, when want_dq, dQ = dS·K.
// have_dp = 0: dP = dO·Vᵀ computed here from dO [BH, Tq, Dv] and Vt (V transposed, padded
// [BH, Dv, Tkp]); have_dp = 1: dP [BH, Tq, Tk] is given (attention-probabilities backward).
// Unused pointers may alias dS. Global size: [ceil(Tq / AR), BH].
__kernel void attention_backward_q(__global float* dQ, __global float* dS,
                                   __global const float* dO, __global const float* Vt, __global const float* dP,
                                   __global const float* P, __global const float* K,
                                   int Tq, int Tk, int Tkp, int D, int Dv, float scale, int have_dp, int want_dq) {
    const int i0 = get_global_id(0) * AR, bh = get_global_id(1);
    if (i0 >= Tq) return;
    const int nrows = min(AR, Tq - i0);
    const size_t row0 = ((size_t)bh * Tq + i0) * Tk;
    __global float* ds = dS + row0;
    __global const float* src = ds;
    if (have_dp) {
        src = dP + row0;
    } else {
        att_scores(ds, Tk, nrows, dO + ((size_t)bh * Tq + i0) * Dv, Dv, Dv, Vt + (size_t)bh * Dv * Tkp, Tkp, Tk, 1.0f);
    }
    for (int r = 0; r < nrows; ++r) {
        const size_t o = (size_t)r * Tk;
        att_ds_row(ds + o, src + o, P + row0 + o, Tk, scale);
    }
    if (want_dq) {
        att_rows_times_matrix(dQ + ((size_t)bh * Tq + i0) * D, D, nrows, ds, Tk, 1, Tk,
                              K + (size_t)bh * Tk * D, D, D);
    }
}

// dK = dSᵀ·Q (want_dk) and dV = Pᵀ·dO (want_dv); each work item owns AR key rows.
// Unused pointers may alias anything valid. Global size: [ceil(Tk / AR), BH].
__kernel void attention_backward_kv(__global float* dK, __global float* dV,
                                    __global const float* dS, __global const float* Q,
                                    __global const float* P, __global const float* dO,
                                    int Tq, int Tk, int D, int Dv, int want_dk, int want_dv) {
    const int j0 = get_global_id(0) * AR, bh = get_global_id(1);
    if (j0 >= Tk) return;
    const int nrows = min(AR, Tk - j0);
    const size_t col0 = (size_t)bh * Tq * Tk + j0;
    if (want_dk) {
        att_rows_times_matrix(dK + ((size_t)bh * Tk + j0) * D, D, nrows, dS + col0, 1, Tk, Tq,
                              Q + (size_t)bh * Tq * D, D, D);
    }
    if (want_dv) {
        att_rows_times_matrix(dV + ((size_t)bh * Tk + j0) * Dv, Dv, nrows, P + col0, 1, Tk, Tq,
                              dO + (size_t)bh * Tq * Dv, Dv, Dv);
    }
}
