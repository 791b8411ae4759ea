// matmul.cl — batched matrix multiply with arbitrary operand strides and optional bias.
//
// C[b, m, n] = sum_k A(b, m, k) * B(b, k, n) + (has_bias ? bias[n] : 0)
//   A(b, m, k) = A[b*a_bs + m*a_rs + k*a_cs]   (a_bs = 0 broadcasts A over the batch)
//   B(b, k, n) = B[b*b_bs + k*b_rs + n*b_cs]
//   C contiguous [batch, M, N].
// Transposed operands are just other strides. Each work item computes a 4x8 register block.
// Global size: [ceil(N/8), ceil(M/4), batch].

#define TM 4
#define TN 8

__kernel void matmul_forward(__global float* C,
                             __global const float* A, __global const float* B,
                             __global const float* bias, int has_bias,
                             int M, int N, int K,
                             int a_bs, int a_rs, int a_cs,
                             int b_bs, int b_rs, int b_cs) {
    const int n0 = get_global_id(0) * TN;
    const int m0 = get_global_id(1) * TM;
    const int batch = get_global_id(2);
    if (m0 >= M || n0 >= N) return;
    __global const float* a = A + batch * a_bs;
    __global const float* b = B + batch * b_bs;

    // Clamp row/column indices so edge blocks load valid memory; stores are guarded below.
    int arow[TM];
    for (int i = 0; i < TM; ++i) arow[i] = min(m0 + i, M - 1) * a_rs;
    int bcol[TN];
    for (int j = 0; j < TN; ++j) bcol[j] = min(n0 + j, N - 1) * b_cs;

    float8 acc0 = 0.0f, acc1 = 0.0f, acc2 = 0.0f, acc3 = 0.0f;
    for (int k = 0; k < K; ++k) {
        __global const float* bk = b + k * b_rs;
        float8 bv = (float8)(bk[bcol[0]], bk[bcol[1]], bk[bcol[2]], bk[bcol[3]],
                             bk[bcol[4]], bk[bcol[5]], bk[bcol[6]], bk[bcol[7]]);
        int ak = k * a_cs;
        acc0 = fma((float8)(a[arow[0] + ak]), bv, acc0);
        acc1 = fma((float8)(a[arow[1] + ak]), bv, acc1);
        acc2 = fma((float8)(a[arow[2] + ak]), bv, acc2);
        acc3 = fma((float8)(a[arow[3] + ak]), bv, acc3);
    }
    float8 bias8 = 0.0f;
    if (has_bias) {
        float tmp[TN];
        for (int j = 0; j < TN; ++j) tmp[j] = bias[min(n0 + j, N - 1)];
        bias8 = vload8(0, tmp);
    }
    float rows[TM][TN];
    vstore8(acc0 + bias8, 0, rows[0]);
    vstore8(acc1 + bias8, 0, rows[1]);
    vstore8(acc2 + bias8, 0, rows[2]);
    vstore8(acc3 + bias8, 0, rows[3]);
    __global float* c = C + batch * M * N;
    for (int i = 0; i < TM; ++i) {
        if (m0 + i >= M) break;
        for (int j = 0; j < TN; ++j) {
            if (n0 + j < N) c[(m0 + i) * N + n0 + j] = rows[i][j];
        }
    }
}
