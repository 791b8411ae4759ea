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

// Stages A's tile (rows m0.., k0..) into As[k][m] (As is [KWG][MWG]).
inline void gemm_load_a(__local float* As, __global const float* A, int a_rs, int a_cs, int m0, int k0,
                        int M, int K, int tid) {
    const bool inside = m0 + MWG <= M && k0 + KWG <= K;
#if A_MCONTIG
    // Fast axis m: vectors of VWM rows at one k.
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
#else
    // Fast axis k: vectors of VWM k-values of one row.
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
        __local const float* as = As[cur];
        __local const float* bs = Bs[cur];
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
