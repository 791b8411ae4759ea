// reduce.cl — sums over axes; the backward of the L2 norm.

// out[j] = scale * sum_r x[kept_off(j) + red_off(r)], j in [0, n_out), r in [0, n_red).
// kept: index_map over the kept axes (s0 = strides in x); red: over the reduced axes (s0 = strides in x).
// Global size: n_out. Accumulates in float with Kahan compensation.
__kernel void reduce_sum(__global float* out, __global const float* x, int n_out, int n_red,
                         index_map kept, index_map red, float scale) {
    int j = get_global_id(0);
    if (j >= n_out) return;
    int base = index_map_offsets(&kept, j).x;
    float sum = 0.0f, comp = 0.0f;
    if (red.rank == 1) {
        int s = red.s0[0];
        for (int r = 0; r < n_red; ++r) {
            float y = x[base + r * s] - comp;
            float t = sum + y;
            comp = (t - sum) - y;
            sum = t;
        }
    } else {
        for (int r = 0; r < n_red; ++r) {
            float y = x[base + index_map_offsets(&red, r).x] - comp;
            float t = sum + y;
            comp = (t - sum) - y;
            sum = t;
        }
    }
    out[j] = scale * sum;
}

// Backward of y = ‖x‖₂ over some axes, with dy and y already broadcast to x's shape:
// dx[i] = dy[i] * x[i] / y[i], and 0 where y[i] = 0. Global size: n.
__kernel void reduce_l2_backward_x(__global float* dx, __global const float* dy, __global const float* x,
                                   __global const float* y, int n) {
    int i = get_global_id(0);
    if (i < n) dx[i] = y[i] > 0.0f ? dy[i] * x[i] / y[i] : 0.0f;
}
