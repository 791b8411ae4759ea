// common.cl — definitions prepended to every other kernel file when it is built: the index map,
// horizontal reductions of a float8 (hsum8, hmax8) and a contiguous softmax row (softmax_row).
// Layout rules: tensors are dense row-major fp32; element offsets are 32-bit ints.

#define MAX_RANK 8

// Maps a linear index over dims (row-major) to two element offsets:
// off_k = sum_axis coord_axis * s_k[axis]. Stride 0 broadcasts an axis. Matches Swift's IndexMap.
typedef struct {
    int rank;
    int dims[MAX_RANK];
    int s0[MAX_RANK];
    int s1[MAX_RANK];
} index_map;

// Decomposes linear index i over m's dims and returns both offsets.
inline int2 index_map_offsets(const index_map* m, int i) {
    int o0 = 0, o1 = 0;
    for (int axis = m->rank - 1; axis >= 0; --axis) {
        int d = m->dims[axis];
        int c = i % d;
        i /= d;
        o0 += c * m->s0[axis];
        o1 += c * m->s1[axis];
    }
    return (int2)(o0, o1);
}

// Horizontal maximum and sum of the 8 lanes of v (pairwise: lo/hi halves, then quarters, then the pair).
inline float hmax8(float8 v) {
    float4 m = fmax(v.lo, v.hi);
    float2 n = fmax(m.lo, m.hi);
    return fmax(n.x, n.y);
}

inline float hsum8(float8 v) {
    float4 s = v.lo + v.hi;
    float2 t = s.lo + s.hi;
    return t.x + t.y;
}

// A contiguous row: y[0 .. n) = softmax(x[0 .. n)) = exp(x − max) / Σ exp(x − max), 8 lanes at a time
// plus a scalar tail. y may alias x (attention normalizes its score rows in place).
inline void softmax_row(__global float* y, __global const float* x, int n) {
    const int n8 = n & ~7;
    float8 m8 = (float8)(-INFINITY);
    for (int k = 0; k < n8; k += 8) m8 = fmax(m8, vload8(0, x + k));
    float m = hmax8(m8);
    for (int k = n8; k < n; ++k) m = fmax(m, x[k]);
    float8 s8 = 0.0f;
    for (int k = 0; k < n8; k += 8) {
        const float8 e = exp(vload8(0, x + k) - m);
        vstore8(e, 0, y + k);
        s8 += e;
    }
    float sum = hsum8(s8);
    for (int k = n8; k < n; ++k) { const float e = exp(x[k] - m); y[k] = e; sum += e; }
    const float inv = 1.0f / sum;
    for (int k = 0; k < n8; k += 8) vstore8(vload8(0, y + k) * inv, 0, y + k);
    for (int k = n8; k < n; ++k) y[k] *= inv;
}
