// pad.cl — Pad (constant / reflect / edge) over tensors of rank <= 8, forward and backward.
// Modes: 0 constant, 1 reflect, 2 edge (Swift's PadMode order).

typedef struct {
    int rank;
    int out_dims[MAX_RANK];
    int in_dims[MAX_RANK];
    int begin[MAX_RANK];
} pad_geom;

// The input index read by output index c of an axis of size n padded by `begin`; -1 for the constant.
inline int pad_source(int c, int begin, int n, int mode) {
    int i = c - begin;
    if (i >= 0 && i < n) return i;
    if (mode == 1) return i < 0 ? -i : 2 * (n - 1) - i;   // reflect
    if (mode == 2) return i < 0 ? 0 : n - 1;              // edge
    return -1;                                            // constant
}

// y[c] = x[src(c)] per axis, or value where any axis reads outside x in constant mode.
// y: [out_dims] (n elements); x: [in_dims]. Global size: n.
__kernel void pad_forward(__global float* y, __global const float* x, int n, int mode, float value, pad_geom g) {
    int o = get_global_id(0);
    if (o >= n) return;
    int rest = o, offset = 0, stride = 1;
    for (int axis = g.rank - 1; axis >= 0; --axis) {
        const int c = rest % g.out_dims[axis];
        rest /= g.out_dims[axis];
        const int i = pad_source(c, g.begin[axis], g.in_dims[axis], mode);
        if (i < 0) { y[o] = value; return; }
        offset += i * stride;
        stride *= g.in_dims[axis];
    }
    y[o] = x[offset];
}

// Backward of the padding of one axis, gather form: the tensor is viewed as [outer, n_out, inner]
// (dy) and [outer, n_in, inner] (dx), and
//   dx[o, i, k] = sum over the c in [0, n_out) with pad_source(c) == i of dy[o, c, k]
// which is c = i + begin, plus for reflect c = begin - i (1 <= i <= begin) and
// c = begin + 2(n_in - 1) - i (in the end pad), for edge all of the begin pad (i = 0) or end pad
// (i = n_in - 1). Global size: [inner, n_in, outer].
__kernel void pad_backward_axis(__global float* dx, __global const float* dy,
                                int outer, int n_out, int n_in, int inner, int begin, int mode) {
    const int k = get_global_id(0), i = get_global_id(1), o = get_global_id(2);
    if (k >= inner || i >= n_in || o >= outer) return;
    __global const float* src = dy + o * n_out * inner + k;
    float sum = src[(i + begin) * inner];
    const int end_start = begin + n_in;   // first index of the end pad
    if (mode == 1) {
        if (i >= 1 && i <= begin) sum += src[(begin - i) * inner];
        const int c = begin + 2 * (n_in - 1) - i;
        if (c >= end_start && c < n_out) sum += src[c * inner];
    } else if (mode == 2) {
        if (i == 0) for (int c = 0; c < begin; ++c) sum += src[c * inner];
        if (i == n_in - 1) for (int c = end_start; c < n_out; ++c) sum += src[c * inner];
    }
    dx[(o * n_in + i) * inner + k] = sum;
}
