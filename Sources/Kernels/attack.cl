// attack.cl — per-example kernels of the adversarial attack loop (Adversarial/AttackKernels.swift):
// the signed and normalized ascent steps on δ, the projection of δ onto the ε-ball and the [0, 1]
// box, and the 8-bit L∞ quantization of x = x0 + δ. Every buffer holds one example's 3·H·W values
// (or a batch of them for the quantization), n values, in [0, 1] image units.
// CPU reference: Backends/CPU/Attack+CPU.swift (the arithmetic of Adversarial/Perturbation.swift).

// out[0] = Σ_i x[i]² over n values. One work group: global = local = L (a power of two),
// scratch: L floats.
__kernel void attack_sum_squares(__global float* out, __global const float* x, int n, __local float* scratch) {
    const int l = get_local_id(0), L = get_local_size(0);
    float s = 0.0f;
    for (int i = l; i < n; i += L) s += x[i] * x[i];
    scratch[l] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = L / 2; k > 0; k >>= 1) {
        if (l < k) scratch[l] += scratch[l + k];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) out[0] = scratch[0];
}

// FGSM/BIM/PGD L∞ step: δ[i] += α·sign(g[i]), sign(0) = 0. Global size: n.
__kernel void attack_sign_step(__global float* delta, __global const float* g, int n, float alpha) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const float v = g[i];
    delta[i] += alpha * (v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f));
}

// PGD L2 step: δ[i] += α·g[i]/(‖g‖₂ + 1e-10), ‖g‖₂² = sumsq[0] (attack_sum_squares of g). Global size: n.
__kernel void attack_normalized_step(__global float* delta, __global const float* g, __global const float* sumsq,
                                     int n, float alpha) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const float norm = sqrt(sumsq[0]) + 1e-10f;
    delta[i] += alpha * g[i] / norm;
}

// Projection onto the ε-ball, then onto the box x0 + δ ∈ [0, 1]:
//   L∞ (l2 == 0): d = clamp(δ, −ε, ε);  L2: d = δ·ε/‖δ‖₂ where ‖δ‖₂ > ε (‖δ‖₂² = sumsq[0]), else δ;
//   δ = clamp(x0 + d, 0, 1) − x0.  Global size: n.
__kernel void attack_project(__global float* delta, __global const float* x0, __global const float* sumsq,
                             int n, float eps, int l2) {
    const int i = get_global_id(0);
    if (i >= n) return;
    float d = delta[i];
    if (l2) {
        const float norm = sqrt(sumsq[0]);
        if (norm > eps) d *= eps / norm;
    } else {
        d = fmin(fmax(d, -eps), eps);
    }
    delta[i] = fmin(fmax(x0[i] + d, 0.0f), 1.0f) - x0[i];
}

// The 8-bit image nearest x within the L∞ bound, as values in [0, 1] (Perturbation.quantize for L∞):
//   p0 = round(255·x0) (x0 holds 8-bit values /255), q = round(255·clamp(x, 0, 1)) − p0 (0 for NaN),
//   q = clamp(q, −bound, bound), out = clamp(p0 + q, 0, 255)/255.  Global size: n.
__kernel void attack_quantize_linf(__global float* out, __global const float* x, __global const float* x0,
                                   int n, int bound) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int p0 = (int)rint(x0[i] * 255.0f);
    const float v = x[i];
    int q = isnan(v) ? 0 : (int)round(fmin(fmax(v, 0.0f), 1.0f) * 255.0f) - p0;
    q = clamp(q, -bound, bound);
    out[i] = (float)clamp(p0 + q, 0, 255) / 255.0f;
}
