// matmul.cl — batched matrix multiply with arbitrary operand strides and optional bias.
//
// C[b, m, n] = sum_k A(b, m, k) * B(b, k, n) + (has_bias ? bias[n] : 0)
//   A(b, m, k) = A[b*a_bs + m*a_rs + k*a_cs]   (a_bs = 0 broadcasts A over the batch)
//   B(b, k, n) = Bp[b*b_bs + k*ldb + n]         (row-major panel rows; see matmul_pack_b)
//   C contiguous [batch, M, N].
//
// CPU-friendly design (PoCL runs a work-group's items as loops; __local tiling is slow there):
// each work item computes an 8×16 block of C in eight float16 accumulators (eight AVX-512
// registers). Per k it loads one contiguous row segment B(k, n0..n0+15) and broadcasts eight
// scalars of A. B must be readable for 16 columns from every n0, which holds when N % 16 == 0
// and B is row-major (used as is), else B is first copied into a zero-padded row-major panel
// [batch, K, ldb] with ldb = round_up(N, 16) by matmul_pack_b. Work items along dimension 0
// walk down M, so consecutive items reuse the same B columns from cache.
// Global size: [ceil(M/8), ceil(N/16), batch].

#define MR 8
#define NR 16

__kernel void matmul_8x16(__global float* C,
                          __global const float* A, int a_bs, int a_rs, int a_cs,
                          __global const float* Bp, int b_bs, int ldb,
                          __global const float* bias, int has_bias,
                          int M, int N, int K) {
    const int m0 = get_global_id(0) * MR;
    const int n0 = get_global_id(1) * NR;
    const int batch = get_global_id(2);
    if (m0 >= M || n0 >= N) return;
    __global const float* b = Bp + batch * b_bs + n0;
    // Rows past M are clamped to M-1 (valid loads); their results are not stored.
    __global const float* a0 = A + batch * a_bs + min(m0 + 0, M - 1) * a_rs;
    __global const float* a1 = A + batch * a_bs + min(m0 + 1, M - 1) * a_rs;
    __global const float* a2 = A + batch * a_bs + min(m0 + 2, M - 1) * a_rs;
    __global const float* a3 = A + batch * a_bs + min(m0 + 3, M - 1) * a_rs;
    __global const float* a4 = A + batch * a_bs + min(m0 + 4, M - 1) * a_rs;
    __global const float* a5 = A + batch * a_bs + min(m0 + 5, M - 1) * a_rs;
    __global const float* a6 = A + batch * a_bs + min(m0 + 6, M - 1) * a_rs;
    __global const float* a7 = A + batch * a_bs + min(m0 + 7, M - 1) * a_rs;

    float16 c0 = 0.0f, c1 = 0.0f, c2 = 0.0f, c3 = 0.0f, c4 = 0.0f, c5 = 0.0f, c6 = 0.0f, c7 = 0.0f;
    int ak = 0;
    for (int k = 0; k < K; ++k, ak += a_cs) {
        const float16 bv = vload16(0, b + k * ldb);
        c0 = fma((float16)(a0[ak]), bv, c0);
        c1 = fma((float16)(a1[ak]), bv, c1);
        c2 = fma((float16)(a2[ak]), bv, c2);
        c3 = fma((float16)(a3[ak]), bv, c3);
        c4 = fma((float16)(a4[ak]), bv, c4);
        c5 = fma((float16)(a5[ak]), bv, c5);
        c6 = fma((float16)(a6[ak]), bv, c6);
        c7 = fma((float16)(a7[ak]), bv, c7);
    }
    const bool full_n = n0 + NR <= N;
    float16 bias16 = 0.0f;
    if (has_bias) {
        if (full_n) {
            bias16 = vload16(0, bias + n0);
        } else {
            float tmp[NR];
            #pragma unroll
            for (int j = 0; j < NR; ++j) tmp[j] = bias[min(n0 + j, N - 1)];
            bias16 = vload16(0, tmp);
        }
    }
    __global float* c = C + (batch * M + m0) * N + n0;
    const int rows = min(MR, M - m0);
    if (full_n) {
        vstore16(c0 + bias16, 0, c);
        if (rows > 1) vstore16(c1 + bias16, 0, c + N);
        if (rows > 2) vstore16(c2 + bias16, 0, c + 2 * N);
        if (rows > 3) vstore16(c3 + bias16, 0, c + 3 * N);
        if (rows > 4) vstore16(c4 + bias16, 0, c + 4 * N);
        if (rows > 5) vstore16(c5 + bias16, 0, c + 5 * N);
        if (rows > 6) vstore16(c6 + bias16, 0, c + 6 * N);
        if (rows > 7) vstore16(c7 + bias16, 0, c + 7 * N);
    } else {
        float out[MR][NR];
        vstore16(c0 + bias16, 0, out[0]);
        vstore16(c1 + bias16, 0, out[1]);
        vstore16(c2 + bias16, 0, out[2]);
        vstore16(c3 + bias16, 0, out[3]);
        vstore16(c4 + bias16, 0, out[4]);
        vstore16(c5 + bias16, 0, out[5]);
        vstore16(c6 + bias16, 0, out[6]);
        vstore16(c7 + bias16, 0, out[7]);
        const int cols = N - n0;
        for (int i = 0; i < rows; ++i) {
            for (int j = 0; j < cols; ++j) c[i * N + j] = out[i][j];
        }
    }
}

// Bp[b, k, n] = n < N ? B[b*b_bs + k*b_rs + n*b_cs] : 0, for n < ldb (a zero-padded row-major copy
// of op(B); a transposed B is transposed here). Each work item copies a 16×16 tile, reading along
// whichever of k or n is contiguous in B.
// Global size: [ceil(ldb/16), ceil(K/16), batch].
__kernel void matmul_pack_b(__global float* Bp, __global const float* B, int b_bs, int b_rs, int b_cs,
                            int K, int N, int ldb) {
    const int n0 = get_global_id(0) * 16;
    const int k0 = get_global_id(1) * 16;
    const int batch = get_global_id(2);
    if (n0 >= ldb || k0 >= K) return;
    __global const float* src = B + batch * b_bs;
    __global float* dst = Bp + batch * K * ldb;
    const int kEnd = min(k0 + 16, K);
    if (b_cs == 1) {
        for (int k = k0; k < kEnd; ++k) {
            for (int n = n0; n < n0 + 16; ++n) dst[k * ldb + n] = n < N ? src[k * b_rs + n] : 0.0f;
        }
    } else {
        for (int n = n0; n < n0 + 16; ++n) {
            for (int k = k0; k < kEnd; ++k) dst[k * ldb + n] = n < N ? src[k * b_rs + n * b_cs] : 0.0f;
        }
    }
}
