// optim.cl — optimizer and housekeeping kernels for activation maximization: Adam step, clamp,
// finiteness check. All work in place on the parameter tensor.

// PyTorch's Adam (torch.optim.Adam, no weight decay, single-tensor path), one step, in place.
// With g' = sign·g (sign = −1 for gradient ascent, PyTorch's `maximize`):
//   m += (1 − β1)·(g' − m)   (PyTorch's lerp),   v = β2·v + (1 − β2)·g'²,
//   p −= step_size · m / (√v / sqrt_bc2 + eps),  step_size = lr / (1 − β1^t), sqrt_bc2 = √(1 − β2^t).
// p, g, m, v: n floats. Global size: n.
__kernel void adam_step(__global float* p, __global float* m, __global float* v, __global const float* g,
                        int n, float beta1, float beta2, float step_size, float sqrt_bc2, float eps, float sign) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const float grad = sign * g[i];
    const float mi = m[i] + (1.0f - beta1) * (grad - m[i]);
    const float vi = beta2 * v[i] + (1.0f - beta2) * grad * grad;
    m[i] = mi;
    v[i] = vi;
    p[i] -= step_size * mi / (sqrt(vi) / sqrt_bc2 + eps);
}

// p[i] = min(max(p[i], lo), hi), in place. Global size: n.
__kernel void clamp_inplace(__global float* p, int n, float lo, float hi) {
    const int i = get_global_id(0);
    if (i < n) p[i] = fmin(fmax(p[i], lo), hi);
}

// flag[0] = 1 if any of x[0..n) is NaN or ±Inf (flag must be 0 before; every writer writes the same
// value, so no atomics are needed). Each work item checks a strided range. Global size: any (≤ n).
__kernel void all_finite(__global float* flag, __global const float* x, int n) {
    const int stride = get_global_size(0);
    int bad = 0;
    for (int i = get_global_id(0); i < n; i += stride) {
        const float v = x[i];
        bad |= (isnan(v) || isinf(v)) ? 1 : 0;
    }
    if (bad) flag[0] = 1.0f;
}
