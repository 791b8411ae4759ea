// softmax.cl — softmax and log-softmax along one axis, forward and backward.
//
// Tensors are viewed as [outer, n, inner]: the axis has length n and stride inner.
// One work item per (outer, inner) pair walks its n elements; for the last axis (inner = 1) a
// work item owns a whole contiguous row (softmax and its backward read it 8 lanes at a time),
// otherwise neighbouring work items read neighbouring addresses.
// Global size: [outer * inner].

// y = exp(x − max) / Σ exp(x − max)
__kernel void softmax_forward(__global float* y, __global const float* x, int outer, int n, int inner) {
    const int id = get_global_id(0);
    if (id >= outer * inner) return;
    const int o = id / inner, i = id - o * inner;
    const size_t base = (size_t)o * n * inner + i;
    if (inner == 1) { softmax_row(y + base, x + base, n); return; }
    float m = -INFINITY;
    for (int k = 0; k < n; ++k) m = fmax(m, x[base + (size_t)k * inner]);
    float sum = 0.0f;
    for (int k = 0; k < n; ++k) {
        float e = exp(x[base + (size_t)k * inner] - m);
        y[base + (size_t)k * inner] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
    for (int k = 0; k < n; ++k) y[base + (size_t)k * inner] *= inv;
}

// dx = y ⊙ (dy − Σ dy ⊙ y)   (from the saved output y)
__kernel void softmax_backward_x(__global float* dx, __global const float* dy, __global const float* y,
                                 int outer, int n, int inner) {
    const int id = get_global_id(0);
    if (id >= outer * inner) return;
    const int o = id / inner, i = id - o * inner;
    const size_t base = (size_t)o * n * inner + i;
    if (inner == 1) {
        __global const float* g = dy + base;
        __global const float* p = y + base;
        __global float* d = dx + base;
        const int n8 = n & ~7;
        float8 dot8 = 0.0f;
        for (int k = 0; k < n8; k += 8) dot8 = fma(vload8(0, g + k), vload8(0, p + k), dot8);
        float dot = hsum8(dot8);
        for (int k = n8; k < n; ++k) dot = fma(g[k], p[k], dot);
        for (int k = 0; k < n8; k += 8) vstore8(vload8(0, p + k) * (vload8(0, g + k) - dot), 0, d + k);
        for (int k = n8; k < n; ++k) d[k] = p[k] * (g[k] - dot);
        return;
    }
    float dot = 0.0f;
    for (int k = 0; k < n; ++k) dot = fma(dy[base + (size_t)k * inner], y[base + (size_t)k * inner], dot);
    for (int k = 0; k < n; ++k) {
        size_t p = base + (size_t)k * inner;
        dx[p] = y[p] * (dy[p] - dot);
    }
}

// y = (x − max) − log Σ exp(x − max)
__kernel void log_softmax_forward(__global float* y, __global const float* x, int outer, int n, int inner) {
    const int id = get_global_id(0);
    if (id >= outer * inner) return;
    const int o = id / inner, i = id - o * inner;
    const size_t base = (size_t)o * n * inner + i;
    float m = -INFINITY;
    for (int k = 0; k < n; ++k) m = fmax(m, x[base + (size_t)k * inner]);
    float sum = 0.0f;
    for (int k = 0; k < n; ++k) sum += exp(x[base + (size_t)k * inner] - m);
    // (x − max) first: exact for nearby values, so large logits lose no precision.
    const float lse = log(sum);
    for (int k = 0; k < n; ++k) y[base + (size_t)k * inner] = (x[base + (size_t)k * inner] - m) - lse;
}

// dx = dy − exp(y) · Σ dy   (from the saved output y)
__kernel void log_softmax_backward_x(__global float* dx, __global const float* dy, __global const float* y,
                                     int outer, int n, int inner) {
    const int id = get_global_id(0);
    if (id >= outer * inner) return;
    const int o = id / inner, i = id - o * inner;
    const size_t base = (size_t)o * n * inner + i;
    float sum = 0.0f;
    for (int k = 0; k < n; ++k) sum += dy[base + (size_t)k * inner];
    for (int k = 0; k < n; ++k) {
        size_t p = base + (size_t)k * inner;
        dx[p] = dy[p] - exp(y[p]) * sum;
    }
}
