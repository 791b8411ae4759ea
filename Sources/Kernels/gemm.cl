// gemm.cl — the GPU-style GEMM variant: 2-D work-group tiles staged in local memory, per-thread
// register blocks, vector loads, a double-buffered K loop. Every size is a build option (CLBlast's
// Xgemm parameter names; the design follows its published description, the code is amgpu's own):
//
//   MWG, NWG, KWG   the work-group's tile of C (MWG × NWG) and the K-slice staged per step (KWG)
//   MDIMC, NDIMC    the work-group shape (local size [MDIMC, NDIMC]); each thread computes
//                   MWI × NWI = (MWG/MDIMC) × (NWG/NDIMC) values of C, rows tm + i·MDIMC, columns tn + j·NDIMC
//   VWM, VWN        vector width of the global loads of A and B (1, 2, 4, 8 or 16) along each operand's
//                   contiguous axis (vloadN needs only float alignment; edge tiles load scalars)
//   A_MCONTIG       1 when A's rows are contiguous along m (A stored transposed, a_rs == 1), else a_cs == 1
//   B_NCONTIG       1 when B is contiguous along n (b_cs == 1), else along k (B stored transposed, b_rs == 1)
//   BIAS_M          bias indexed by the row m (a convolution's output channel) instead of the column n
//
// C[b, m, n] = sum_k A(b, m, k) * B(b, k, n) + bias
//   A(b, m, k) = A[b*a_bs + m*a_rs + k*a_cs],  B(b, k, n) = B[b*b_bs + k*b_rs + n*b_cs]
//   C[b*c_bs + m*N + n] (rows of N contiguous).
// Any M, N, K: tiles that cross an edge load with bounds checks (zeros outside) and store only inside.
// The launcher (Backends/OpenCL/GEMM+OpenCL.swift) checks the divisibility rules below before building.
// Global size: [ceil(M/MWG)*MDIMC, ceil(N/NWG)*NDIMC, batch]; local size: [MDIMC, NDIMC, 1].
//
// The same tiles serve the implicit-GEMM convolutions at the end of this file (conv2d_forward_tiled,
// conv2d_backward_input_tiled): their loaders compute the im2col / transposed-convolution addresses while a
// tile is staged, so one parameter set (and one program per option string) runs matmuls and convolutions.

#ifndef MWG
#define MWG 64
#endif
#ifndef NWG
#define NWG 64
#endif
#ifndef KWG
#define KWG 16
#endif
#ifndef MDIMC
#define MDIMC 16
#endif
#ifndef NDIMC
#define NDIMC 16
#endif
#ifndef VWM
#define VWM 4
#endif
#ifndef VWN
#define VWN 4
#endif
#ifndef A_MCONTIG
#define A_MCONTIG 0
#endif
#ifndef B_NCONTIG
#define B_NCONTIG 1
#endif
#ifndef BIAS_M
#define BIAS_M 0
#endif

#define MWI (MWG / MDIMC)
#define NWI (NWG / NDIMC)
#define THREADS (MDIMC * NDIMC)
#if MWG % MDIMC != 0 || NWG % NDIMC != 0
#error "MWG must be a multiple of MDIMC and NWG of NDIMC"
#endif
#if (MWG * KWG) % (THREADS * VWM) != 0 || (NWG * KWG) % (THREADS * VWN) != 0
#error "a tile's vectors must divide evenly among the work-group's threads"
#endif
#if A_MCONTIG ? (MWG % VWM != 0) : (KWG % VWM != 0)
#error "VWM must divide A's contiguous tile extent"
#endif
#if B_NCONTIG ? (NWG % VWN != 0) : (KWG % VWN != 0)
#error "VWN must divide B's contiguous tile extent"
#endif

#define GEMM_CAT(a, b) a##b
#define GEMM_XCAT(a, b) GEMM_CAT(a, b)


#if VWM == 1
#define GEMM_LOAD_A(p, dst) ((dst)[0] = *(p))
#else
#define GEMM_LOAD_A(p, dst) GEMM_XCAT(vstore, VWM)(GEMM_XCAT(vload, VWM)(0, (p)), 0, (dst))
#endif
#if VWN == 1
#define GEMM_LOAD_B(p, dst) ((dst)[0] = *(p))
#else
#define GEMM_LOAD_B(p, dst) GEMM_XCAT(vstore, VWN)(GEMM_XCAT(vload, VWN)(0, (p)), 0, (dst))
#endif

// Stages A's tile (rows m0.., k0..) into As[k][m] (As is [KWG][MWG]) when A's rows are contiguous along k
// (A(m, k) = A[m*a_rs + k]): vectors of VWM k-values of one row.
inline void gemm_load_a_kcontig(__local float* As, __global const float* A, int a_rs, int m0, int k0,
                                int M, int K, int tid) {
    const bool inside = m0 + MWG <= M && k0 + KWG <= K;
    for (int e = tid; e < KWG * MWG / VWM; e += THREADS) {
        const int m = e / (KWG / VWM), k = (e % (KWG / VWM)) * VWM;
        float v[VWM];
        if (inside) {
            GEMM_LOAD_A(A + (m0 + m) * a_rs + (k0 + k), v);
        } else {
            for (int u = 0; u < VWM; ++u)
                v[u] = (m0 + m < M && k0 + k + u < K) ? A[(m0 + m) * a_rs + (k0 + k + u)] : 0.0f;
        }
        for (int u = 0; u < VWM; ++u) As[(k + u) * MWG + m] = v[u];
    }
}

// The same when A's columns are contiguous along m (A(m, k) = A[m + k*a_cs], A stored transposed):
// vectors of VWM rows at one k.
inline void gemm_load_a_mcontig(__local float* As, __global const float* A, int a_cs, int m0, int k0,
                                int M, int K, int tid) {
    const bool inside = m0 + MWG <= M && k0 + KWG <= K;
    for (int e = tid; e < KWG * MWG / VWM; e += THREADS) {
        const int k = e / (MWG / VWM), m = (e % (MWG / VWM)) * VWM;
        float v[VWM];
        if (inside) {
            GEMM_LOAD_A(A + (m0 + m) + (k0 + k) * a_cs, v);
        } else {
            for (int u = 0; u < VWM; ++u)
                v[u] = (m0 + m + u < M && k0 + k < K) ? A[(m0 + m + u) + (k0 + k) * a_cs] : 0.0f;
        }
        for (int u = 0; u < VWM; ++u) As[k * MWG + m + u] = v[u];
    }
}

// Stages A's tile for matmul_tiled, in the layout A_MCONTIG names.
inline void gemm_load_a(__local float* As, __global const float* A, int a_rs, int a_cs, int m0, int k0,
                        int M, int K, int tid) {
#if A_MCONTIG
    gemm_load_a_mcontig(As, A, a_cs, m0, k0, M, K, tid);
#else
    gemm_load_a_kcontig(As, A, a_rs, m0, k0, M, K, tid);
#endif
}

// Stages B's tile (k0.., columns n0..) into Bs[k][n] (Bs is [KWG][NWG]).
inline void gemm_load_b(__local float* Bs, __global const float* B, int b_rs, int b_cs, int n0, int k0,
                        int N, int K, int tid) {
    const bool inside = n0 + NWG <= N && k0 + KWG <= K;
#if B_NCONTIG
    for (int e = tid; e < KWG * NWG / VWN; e += THREADS) {
        const int k = e / (NWG / VWN), n = (e % (NWG / VWN)) * VWN;
        float v[VWN];
        if (inside) {
            GEMM_LOAD_B(B + (k0 + k) * b_rs + (n0 + n), v);
        } else {
            for (int u = 0; u < VWN; ++u)
                v[u] = (n0 + n + u < N && k0 + k < K) ? B[(k0 + k) * b_rs + (n0 + n + u)] : 0.0f;
        }
        for (int u = 0; u < VWN; ++u) Bs[k * NWG + n + u] = v[u];
    }
#else
    for (int e = tid; e < KWG * NWG / VWN; e += THREADS) {
        const int n = e / (KWG / VWN), k = (e % (KWG / VWN)) * VWN;
        float v[VWN];
        if (inside) {
            GEMM_LOAD_B(B + (k0 + k) + (n0 + n) * b_cs, v);
        } else {
            for (int u = 0; u < VWN; ++u)
                v[u] = (n0 + n < N && k0 + k + u < K) ? B[(k0 + k + u) + (n0 + n) * b_cs] : 0.0f;
        }
        for (int u = 0; u < VWN; ++u) Bs[(k + u) * NWG + n] = v[u];
    }
#endif
}

// acc[i][j] += Σ_k as[k][tm + i·MDIMC] · bs[k][tn + j·NDIMC] over one staged K-slice: the thread's
// MWI × NWI register block (every tiled kernel of this file shares it).
inline void gemm_multiply(__local const float* as, __local const float* bs, float acc[MWI][NWI], int tm, int tn) {
    #pragma unroll
    for (int k = 0; k < KWG; ++k) {
        float av[MWI], bv[NWI];
        #pragma unroll
        for (int i = 0; i < MWI; ++i) av[i] = as[k * MWG + tm + i * MDIMC];
        #pragma unroll
        for (int j = 0; j < NWI; ++j) bv[j] = bs[k * NWG + tn + j * NDIMC];
        #pragma unroll
        for (int i = 0; i < MWI; ++i)
            #pragma unroll
            for (int j = 0; j < NWI; ++j) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
    }
}

__kernel __attribute__((reqd_work_group_size(MDIMC, NDIMC, 1)))
void matmul_tiled(__global float* C, int c_bs,
                  __global const float* A, int a_bs, int a_rs, int a_cs,
                  __global const float* B, int b_bs, int b_rs, int b_cs,
                  __global const float* bias, int has_bias,
                  int M, int N, int K) {
    __local float As[2][KWG * MWG];
    __local float Bs[2][KWG * NWG];
    const int tm = get_local_id(0), tn = get_local_id(1);
    const int tid = tn * MDIMC + tm;
    const int m0 = get_group_id(0) * MWG, n0 = get_group_id(1) * NWG;
    const int batch = get_global_id(2);
    __global const float* a = A + batch * a_bs;
    __global const float* b = B + batch * b_bs;

    float acc[MWI][NWI];
    for (int i = 0; i < MWI; ++i)
        for (int j = 0; j < NWI; ++j) acc[i][j] = 0.0f;

    const int tiles = (K + KWG - 1) / KWG;
    if (tiles > 0) {
        gemm_load_a(As[0], a, a_rs, a_cs, m0, 0, M, K, tid);
        gemm_load_b(Bs[0], b, b_rs, b_cs, n0, 0, N, K, tid);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int t = 0; t < tiles; ++t) {
        const int cur = t & 1;
        // Stage the next K-slice into the other buffer (last read before the previous barrier).
        if (t + 1 < tiles) {
            gemm_load_a(As[cur ^ 1], a, a_rs, a_cs, m0, (t + 1) * KWG, M, K, tid);
            gemm_load_b(Bs[cur ^ 1], b, b_rs, b_cs, n0, (t + 1) * KWG, N, K, tid);
        }
        gemm_multiply(As[cur], Bs[cur], acc, tm, tn);
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    __global float* c = C + batch * c_bs;
    for (int i = 0; i < MWI; ++i) {
        const int m = m0 + tm + i * MDIMC;
        if (m >= M) continue;
        for (int j = 0; j < NWI; ++j) {
            const int n = n0 + tn + j * NDIMC;
            if (n >= N) continue;
            float v = acc[i][j];
#if BIAS_M
            if (has_bias) v += bias[m];
#else
            if (has_bias) v += bias[n];
#endif
            c[m * N + n] = v;
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Implicit-GEMM convolution (issue #16): the tiles, register blocks and double-buffered K loop above, with the
// im2col (forward) or transposed-convolution (backward-to-input) addresses computed while a tile is staged, so
// no column matrix is ever written. CLBlast's "convgemm" is the reference for the design (facts, not code).
//
// conv_geom matches Swift's ConvGeometry.argumentBytes (and conv.cl's struct of the same name): input x
// [n, cin, h, w], weight W [cout, cin_g, kh, kw], output [n, cout, oh, ow], stride (sh, sw), dilation (dh, dw),
// top/left padding (pt, pl), groups (cin_g = cin/groups, cout_g = cout/groups).
typedef struct {
    int n, cin, h, w;
    int cout, oh, ow;
    int kh, kw, sh, sw, dh, dw, pt, pl;
    int groups, cin_g, cout_g;
} conv_geom;

// The forward's fused activation, scalar; codes match Swift's UnaryFunction raw values and conv.cl's
// conv_activation (-1 = none).
inline float gemm_activation(int op, float v, float a, float b) {
    switch (op) {
    case 0: return fmax(v, 0.0f);                                         // relu
    case 1: return 1.0f / (1.0f + exp(-v));                               // sigmoid
    case 2: return tanh(v);                                               // tanh
    case 3: return v > 0.0f ? v : a * v;                                  // leaky relu
    case 4: return fmin(fmax(v, a), b);                                   // clip [a, b] (ReLU6)
    case 5: return fmin(fmax(a * v + b, 0.0f), 1.0f);                     // hard sigmoid
    case 6: return v * fmin(fmax(v + 3.0f, 0.0f), 6.0f) * (1.0f / 6.0f);  // hard swish
    case 7: return v / (1.0f + exp(-v));                                  // silu
    }
    return v;
}

// Forward B tile: Bs[k][n] = x[ci, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw] (0 outside the input) for
// k = (ci*kh + ky)*kw + kx in k0.., n = oy*ow + ox in n0..; x points at the image's group's first channel.
// Consecutive threads take consecutive n (coalesced along a row of output pixels).
inline void conv_load_b_im2col(__local float* Bs, __global const float* x, const conv_geom g, int n0, int k0,
                               int N, int K, int tid) {
    const int ksize = g.kh * g.kw;
    for (int e = tid; e < KWG * NWG; e += THREADS) {
        const int k = k0 + e / NWG, n = n0 + e % NWG;
        float v = 0.0f;
        if (k < K && n < N) {
            const int ci = k / ksize, t = k - ci * ksize, ky = t / g.kw, kx = t - ky * g.kw;
            const int oy = n / g.ow, ox = n - oy * g.ow;
            const int iy = oy * g.sh - g.pt + ky * g.dh, ix = ox * g.sw - g.pl + kx * g.dw;
            if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) v = x[(ci * g.h + iy) * g.w + ix];
        }
        Bs[e] = v;
    }
}

// y[img, grp*cout_g + m, n] = act(Σ_k W[grp*cout_g + m, k] · B(k, n) + bias), per (image, group) a GEMM with
// M = cout_g, N = oh*ow, K = cin_g*kh*kw; A = W's rows (contiguous along k, vector loads), B = the im2col
// view of x (conv_load_b_im2col). pre (when write_pre) gets the value before the activation.
// Global size: [ceil(M/MWG)*MDIMC, ceil(N/NWG)*NDIMC, n*groups]; local size: [MDIMC, NDIMC, 1].
__kernel __attribute__((reqd_work_group_size(MDIMC, NDIMC, 1)))
void conv2d_forward_tiled(__global float* y, __global float* pre, __global const float* x, __global const float* W,
                          __global const float* bias, int has_bias, int write_pre, int act, float alpha, float beta,
                          conv_geom g) {
    __local float As[2][KWG * MWG];
    __local float Bs[2][KWG * NWG];
    const int tm = get_local_id(0), tn = get_local_id(1);
    const int tid = tn * MDIMC + tm;
    const int m0 = get_group_id(0) * MWG, n0 = get_group_id(1) * NWG;
    const int z = get_global_id(2), img = z / g.groups, grp = z % g.groups;
    const int M = g.cout_g, N = g.oh * g.ow, K = g.cin_g * g.kh * g.kw;
    __global const float* a = W + grp * M * K;
    __global const float* xs = x + (img * g.cin + grp * g.cin_g) * g.h * g.w;

    float acc[MWI][NWI];
    for (int i = 0; i < MWI; ++i)
        for (int j = 0; j < NWI; ++j) acc[i][j] = 0.0f;

    const int tiles = (K + KWG - 1) / KWG;
    if (tiles > 0) {
        gemm_load_a_kcontig(As[0], a, K, m0, 0, M, K, tid);
        conv_load_b_im2col(Bs[0], xs, g, n0, 0, N, K, tid);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int t = 0; t < tiles; ++t) {
        const int cur = t & 1;
        if (t + 1 < tiles) {
            gemm_load_a_kcontig(As[cur ^ 1], a, K, m0, (t + 1) * KWG, M, K, tid);
            conv_load_b_im2col(Bs[cur ^ 1], xs, g, n0, (t + 1) * KWG, N, K, tid);
        }
        gemm_multiply(As[cur], Bs[cur], acc, tm, tn);
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    const int plane0 = img * g.cout + grp * M;
    for (int i = 0; i < MWI; ++i) {
        const int m = m0 + tm + i * MDIMC;
        if (m >= M) continue;
        for (int j = 0; j < NWI; ++j) {
            const int n = n0 + tn + j * NDIMC;
            if (n >= N) continue;
            float v = acc[i][j];
            if (has_bias) v += bias[grp * M + m];
            const int o = (plane0 + m) * N + n;
            if (write_pre) pre[o] = v;
            y[o] = act >= 0 ? gemm_activation(act, v, alpha, beta) : v;
        }
    }
}

// One stride phase of the backward-to-input: the input pixels (iy, ix) with (iy + pt) % sh == ry and
// (ix + pl) % sw == rx (rows iy0, iy0 + sh, ... — `rows` of them; likewise columns), and the taps that reach
// them: ky with ky*dh ≡ ry (mod sh), i.e. ky0, ky0 + sky, ... (`tky` of them, sky = sh / gcd(sh, dh));
// likewise kx. For any other tap (iy + pt − ky*dh) is off the stride grid, so a phase's GEMM skips them.
typedef struct { int iy0, rows, ky0, tky, sky, ix0, cols, kx0, tkx, skx; } conv_phase;

inline int conv_gcd(int a, int b) {
    while (b != 0) { const int t = a % b; a = b; b = t; }
    return a;
}

inline conv_phase conv_phase_of(const conv_geom g, int ry, int rx) {
    conv_phase p;
    p.iy0 = ((ry - g.pt) % g.sh + g.sh) % g.sh;
    p.rows = p.iy0 < g.h ? (g.h - 1 - p.iy0) / g.sh + 1 : 0;
    p.sky = g.sh / conv_gcd(g.sh, g.dh);
    p.ky0 = 0;
    while (p.ky0 < p.sky && (p.ky0 * g.dh) % g.sh != ry) ++p.ky0;
    p.tky = p.ky0 < p.sky && p.ky0 < g.kh ? (g.kh - 1 - p.ky0) / p.sky + 1 : 0;
    p.ix0 = ((rx - g.pl) % g.sw + g.sw) % g.sw;
    p.cols = p.ix0 < g.w ? (g.w - 1 - p.ix0) / g.sw + 1 : 0;
    p.skx = g.sw / conv_gcd(g.sw, g.dw);
    p.kx0 = 0;
    while (p.kx0 < p.skx && (p.kx0 * g.dw) % g.sw != rx) ++p.kx0;
    p.tkx = p.kx0 < p.skx && p.kx0 < g.kw ? (g.kw - 1 - p.kx0) / p.skx + 1 : 0;
    return p;
}

// Backward A tile: As[k][m] = W[grp*cout_g + co, m, ky, kx] for k = t*cout_g + co (t: the phase's tap
// (ty, tx), ky = ky0 + ty*sky, kx = kx0 + tx*skx), read from the weight packed by conv.cl's conv2d_pack_weight
// (wt[((grp*kh*kw + ky*kw + kx)*cout_g + co)*cin_g + ci], so m is contiguous: vector loads of VWM channels).
inline void conv_load_a_packed(__local float* As, __global const float* wt, const conv_geom g, const conv_phase p,
                               int m0, int k0, int M, int K, int tid) {
    for (int e = tid; e < KWG * MWG / VWM; e += THREADS) {
        const int kk = e / (MWG / VWM), m = (e % (MWG / VWM)) * VWM, k = k0 + kk;
        float v[VWM];
        for (int u = 0; u < VWM; ++u) v[u] = 0.0f;
        if (k < K) {
            const int t = k / g.cout_g, co = k - t * g.cout_g, ty = t / p.tkx, tx = t - ty * p.tkx;
            const int tap = (p.ky0 + ty * p.sky) * g.kw + p.kx0 + tx * p.skx;
            __global const float* col = wt + (tap * g.cout_g + co) * g.cin_g + m0 + m;
            if (m0 + m + VWM <= M) {
                GEMM_LOAD_A(col, v);
            } else {
                for (int u = 0; u < VWM; ++u) if (m0 + m + u < M) v[u] = col[u];
            }
        }
        for (int u = 0; u < VWM; ++u) As[kk * MWG + m + u] = v[u];
    }
}

// Backward B tile: Bs[k][n] = dy[co, oy, ox] for k = t*cout_g + co and the phase's n-th pixel
// (iy, ix) = (iy0 + (n / cols)*sh, ix0 + (n % cols)*sw), oy = (iy + pt − ky*dh)/sh (exact), ox likewise;
// 0 where (oy, ox) is outside dy. dy points at the image's group's first channel.
inline void conv_load_b_gather(__local float* Bs, __global const float* dy, const conv_geom g, const conv_phase p,
                               int n0, int k0, int N, int K, int tid) {
    for (int e = tid; e < KWG * NWG; e += THREADS) {
        const int k = k0 + e / NWG, n = n0 + e % NWG;
        float v = 0.0f;
        if (k < K && n < N) {
            const int t = k / g.cout_g, co = k - t * g.cout_g, ty = t / p.tkx, tx = t - ty * p.tkx;
            const int r = n / p.cols, c = n - r * p.cols;
            const int oy = (p.iy0 + r * g.sh + g.pt - (p.ky0 + ty * p.sky) * g.dh) / g.sh;
            const int ox = (p.ix0 + c * g.sw + g.pl - (p.kx0 + tx * p.skx) * g.dw) / g.sw;
            if (oy >= 0 && oy < g.oh && ox >= 0 && ox < g.ow) v = dy[(co * g.oh + oy) * g.ow + ox];
        }
        Bs[e] = v;
    }
}

// Backward-to-input (= ConvTranspose2D's forward), no atomics: every dx value is written once, by the GEMM
// of its stride phase. Per (image, group, phase):
//   dx[img, grp*cin_g + m, iy(n), ix(n)] = bias[grp*cin_g + m] + Σ_k W(k, m) · dy(k, n)
// with M = cin_g, N = rows*cols of the phase, K = tky*tkx*cout_g (0 for a phase no tap reaches: dx = bias or 0).
// wt: the weight packed by conv2d_pack_weight; bias: [cin] (read when has_bias).
// Global size: [ceil(cin_g/MWG)*MDIMC, ceil(ceil(h/sh)*ceil(w/sw)/NWG)*NDIMC, n*groups*sh*sw];
// local size: [MDIMC, NDIMC, 1]. Work-groups past their phase's N stage nothing and store nothing.
__kernel __attribute__((reqd_work_group_size(MDIMC, NDIMC, 1)))
void conv2d_backward_input_tiled(__global float* dx, __global const float* dy, __global const float* wt,
                                 __global const float* bias, int has_bias, conv_geom g) {
    __local float As[2][KWG * MWG];
    __local float Bs[2][KWG * NWG];
    const int tm = get_local_id(0), tn = get_local_id(1);
    const int tid = tn * MDIMC + tm;
    const int m0 = get_group_id(0) * MWG, n0 = get_group_id(1) * NWG;
    const int phases = g.sh * g.sw, z = get_global_id(2);
    const int ph = z % phases, grp = (z / phases) % g.groups, img = z / (phases * g.groups);
    const conv_phase p = conv_phase_of(g, ph / g.sw, ph % g.sw);
    const int M = g.cin_g, N = p.rows * p.cols, K = p.tky * p.tkx * g.cout_g;
    __global const float* a = wt + grp * g.kh * g.kw * g.cout_g * g.cin_g;
    __global const float* b = dy + (img * g.cout + grp * g.cout_g) * g.oh * g.ow;

    float acc[MWI][NWI];
    for (int i = 0; i < MWI; ++i)
        for (int j = 0; j < NWI; ++j) acc[i][j] = 0.0f;

    // No early return (the barriers below must be reached by the whole work-group): a group past N runs no tiles.
    const int tiles = n0 < N ? (K + KWG - 1) / KWG : 0;
    if (tiles > 0) {
        conv_load_a_packed(As[0], a, g, p, m0, 0, M, K, tid);
        conv_load_b_gather(Bs[0], b, g, p, n0, 0, N, K, tid);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int t = 0; t < tiles; ++t) {
        const int cur = t & 1;
        if (t + 1 < tiles) {
            conv_load_a_packed(As[cur ^ 1], a, g, p, m0, (t + 1) * KWG, M, K, tid);
            conv_load_b_gather(Bs[cur ^ 1], b, g, p, n0, (t + 1) * KWG, N, K, tid);
        }
        gemm_multiply(As[cur], Bs[cur], acc, tm, tn);
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    for (int i = 0; i < MWI; ++i) {
        const int m = m0 + tm + i * MDIMC;
        if (m >= M) continue;
        const int ci = grp * M + m;
        const float add = has_bias ? bias[ci] : 0.0f;
        __global float* plane = dx + (img * g.cin + ci) * g.h * g.w;
        for (int j = 0; j < NWI; ++j) {
            const int n = n0 + tn + j * NDIMC;
            if (n >= N) continue;
            const int r = n / p.cols, c = n - r * p.cols;
            plane[(p.iy0 + r * g.sh) * g.w + p.ix0 + c * g.sw] = acc[i][j] + add;
        }
    }
}
