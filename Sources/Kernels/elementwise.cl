// elementwise.cl — unary functions (forward, backward) and broadcasting binary operators
// (forward, gradient to one operand). Op codes match Swift's UnaryFunction / BinaryFunction.

#define SQRT_2_OVER_PI 0.7978845608028654f
#define INV_SQRT_2 0.7071067811865476f
#define INV_SQRT_2PI 0.3989422804014327f
#define TWO_OVER_SQRT_PI 1.1283791670955126f

// Built with -DFIXED_OP=k, the op-code argument is replaced by the constant k, so the switch folds
// away and the kernel vectorizes (one program per function; the launchers pass it).
#ifdef FIXED_OP
#define OP_OF(op) (FIXED_OP)
#else
#define OP_OF(op) (op)
#endif

// erf(x) with relative error ≲ 6e-7 everywhere (PoCL's erf is a slow scalar call; this one vectorizes):
// • |x| < 0.5: Maclaurin series erf(x) = 2/√π · Σ_n (−1)ⁿ x^(2n+1) / (n!·(2n+1)), n = 0…7 (truncation
//   < 2e-10 relative at 0.5), so erf(x) ≈ 1.128·x keeps full relative precision near 0;
// • |x| ≥ 0.5: Abramowitz & Stegun 7.1.26, 1 − p(t)·exp(−x²), |error| ≤ 1.5e-7 absolute, i.e. ≤ 3e-7
//   relative there. (7.1.26 alone near 0 computes 1 − (≈1) and loses everything: erf(1e-6) was off by 6 %,
//   erf(1e-10) was 0; measured in docs/reliability.md.)
inline float erf_fast(float x) {
    float ax = fabs(x);
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float p = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float large = copysign(1.0f - p * exp(-ax * ax), x);
    float x2 = x * x;
    float series = x * (1.1283791671f + x2 * (-3.7612638903e-1f + x2 * (1.1283791671e-1f + x2 * (-2.6866170645e-2f
                 + x2 * (5.2239776254e-3f + x2 * (-8.5483270235e-4f + x2 * (1.2055332982e-4f + x2 * -1.4925650358e-5f)))))));
    return ax < 0.5f ? series : large;
}

inline float sigmoid_f(float x) { return 1.0f / (1.0f + exp(-x)); }
// σ'(x) = σ(x)·σ(−x) = e / (1 + e)², e = exp(−|x|): no cancellation in 1 − σ where σ ≈ 1.
inline float sigmoid_derivative_f(float x) { float e = exp(-fabs(x)); return e / ((1.0f + e) * (1.0f + e)); }
// sech²(x) = 1 − tanh²(x) = 4e / (1 + e)², e = exp(−2|x|): 1 − t·t loses everything where |t| ≈ 1.
inline float sech2_f(float x) { float e = exp(-2.0f * fabs(x)); return 4.0f * e / ((1.0f + e) * (1.0f + e)); }

inline float unary_apply(int op, float x, float alpha, float beta) {
    switch (op) {
    case 0: return fmax(x, 0.0f);                                   // relu
    case 1: return sigmoid_f(x);                                    // sigmoid
    case 2: return tanh(x);                                         // tanh
    case 3: return x > 0.0f ? x : alpha * x;                        // leaky relu
    case 4: return fmin(fmax(x, alpha), beta);                      // clip [alpha, beta]
    case 5: return fmin(fmax(alpha * x + beta, 0.0f), 1.0f);        // hard sigmoid
    case 6: return x * fmin(fmax(x + 3.0f, 0.0f), 6.0f) / 6.0f;      // hard swish
    case 7: return x * sigmoid_f(x);                                // silu
    case 8: return 0.5f * x * (1.0f + erf_fast(x * INV_SQRT_2));         // gelu (erf)
    case 9: { float u = SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
              return x * sigmoid_f(2.0f * u); }                     // gelu (tanh): ½x(1 + tanh u) = x·σ(2u)
    case 10: return erf_fast(x);
    case 11: return exp(x);
    case 12: return log(x);
    case 13: return sqrt(x);
    case 14: return -x;
    case 15: return fabs(x);
    case 16: return alpha * x + beta;                               // affine
    case 17: return 1.0f / x;                                       // reciprocal
    case 18: return x * x;                                          // square
    case 19: return cos(x);
    case 20: return sin(x);
    }
    return NAN;
}

// d f(x) / dx
inline float unary_derivative(int op, float x, float alpha, float beta) {
    switch (op) {
    case 0: return x > 0.0f ? 1.0f : 0.0f;
    case 1: return sigmoid_derivative_f(x);
    case 2: return sech2_f(x);
    case 3: return x > 0.0f ? 1.0f : alpha;
    case 4: return (x > alpha && x < beta) ? 1.0f : 0.0f;
    case 5: { float v = alpha * x + beta; return (v > 0.0f && v < 1.0f) ? alpha : 0.0f; }
    case 6: return x < -3.0f ? 0.0f : (x > 3.0f ? 1.0f : (2.0f * x + 3.0f) / 6.0f);
    case 7: return sigmoid_f(x) + x * sigmoid_derivative_f(x);
    case 8: return 0.5f * (1.0f + erf_fast(x * INV_SQRT_2)) + x * INV_SQRT_2PI * exp(-0.5f * x * x);
    case 9: { float u = SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
              return sigmoid_f(2.0f * u) + 0.5f * x * sech2_f(u) * SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * x * x); }
    case 10: return TWO_OVER_SQRT_PI * exp(-x * x);
    case 11: return exp(x);
    case 12: return 1.0f / x;
    case 13: return 0.5f / sqrt(x);
    case 14: return -1.0f;
    case 15: return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
    case 16: return alpha;
    case 17: return -1.0f / (x * x);
    case 18: return 2.0f * x;
    case 19: return -sin(x);
    case 20: return cos(x);
    }
    return NAN;
}

// y[i] = f(x[i]). Global size: n.
__kernel void unary_forward(__global float* y, __global const float* x, int n, int op, float alpha, float beta) {
    int i = get_global_id(0);
    if (i < n) y[i] = unary_apply(OP_OF(op), x[i], alpha, beta);
}

// dx[i] = dy[i] * f'(x[i]). Global size: n.
__kernel void unary_backward(__global float* dx, __global const float* dy, __global const float* x,
                             int n, int op, float alpha, float beta) {
    int i = get_global_id(0);
    if (i < n) dx[i] = dy[i] * unary_derivative(OP_OF(op), x[i], alpha, beta);
}

inline float binary_apply(int op, float a, float b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return pow(a, b);
    case 5: return fmax(a, b);
    case 6: return fmin(a, b);
    case 7: return a - b * floor(a / b);                            // mod (divisor's sign)
    case 8: return fmod(a, b);                                      // fmod (dividend's sign)
    }
    return NAN;
}

// d op(a, b) / da (which == 0) or / db (which == 1)
inline float binary_partial(int op, int which, float a, float b) {
    switch (op) {
    case 0: return 1.0f;
    case 1: return which == 0 ? 1.0f : -1.0f;
    case 2: return which == 0 ? b : a;
    case 3: return which == 0 ? 1.0f / b : -a / (b * b);
    case 4: return which == 0 ? b * pow(a, b - 1.0f) : pow(a, b) * log(a);
    case 5: return which == 0 ? (a >= b ? 1.0f : 0.0f) : (a >= b ? 0.0f : 1.0f);
    case 6: return which == 0 ? (a <= b ? 1.0f : 0.0f) : (a <= b ? 0.0f : 1.0f);
    case 7: return which == 0 ? 1.0f : -floor(a / b);
    case 8: return which == 0 ? 1.0f : -trunc(a / b);
    }
    return NAN;
}

// out[i] = op(a[off0(i)], b[off1(i)]) over the broadcast output (n = prod m.dims). Global size: n.
__kernel void binary_forward(__global float* out, __global const float* a, __global const float* b,
                             int n, int op, index_map m) {
    int i = get_global_id(0);
    if (i >= n) return;
    int2 o = index_map_offsets(&m, i);
    out[i] = binary_apply(op, a[o.x], b[o.y]);
}

// Same shapes, no broadcast: out[i] = op(a[i], b[i]). Global size: n.
__kernel void binary_forward_same(__global float* out, __global const float* a, __global const float* b,
                                  int n, int op) {
    int i = get_global_id(0);
    if (i < n) out[i] = binary_apply(OP_OF(op), a[i], b[i]);
}

// Output-shaped gradient to one operand: out[i] = g[i] * d op / d(which) at (a[off0(i)], b[off1(i)]).
// The caller sums it down to the operand's shape when that operand was broadcast. Global size: n.
__kernel void binary_grad(__global float* out, __global const float* g,
                          __global const float* a, __global const float* b,
                          int n, int op, int which, index_map m) {
    int i = get_global_id(0);
    if (i >= n) return;
    int2 o = index_map_offsets(&m, i);
    out[i] = g[i] * binary_partial(op, which, a[o.x], b[o.y]);
}
