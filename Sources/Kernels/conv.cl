// conv.cl — 2-D convolution (NCHW) forward with fused bias + activation, and its adjoint
// (backward-to-input = transposed convolution) as a gather: every work item owns the values it
// writes, no atomics. ConvTranspose2D runs the same two kernels the other way round.
//
// Geometry (struct conv_geom, matches Swift's ConvGeometry): input x [n, cin, h, w], weight
// W [cout, cin_g, kh, kw] (cin_g = cin / groups, cout_g = cout / groups), output [n, cout, oh, ow],
//   y[n, co, oy, ox] = sum_{ci in group, ky, kx} W[co, ci, ky, kx] * x[n, ci, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw]
//
// Speed on CPUs through PoCL (and on GPUs): implicit GEMM with register blocking. A forward work
// item computes TCO output channels x PIX output pixels of one row in float8/float16 accumulators;
// the input is first copied into a zero-padded buffer (conv2d_pad) so the inner loop has no bounds
// checks. The backward work item computes TCI input channels x PIX input pixels that share one
// stride phase, so every tap either hits all lanes or none, and reads PIX consecutive dy values.
//
// Compile-time options: -DTCO=n (output channels per forward work item, 1/2/4/8),
// -DTCI=n (input channels per backward work item), -DSW=n (horizontal stride 1, 2, or 0 = any),
// -DPIX=n (pixels per work item, 8 or 16).

#ifndef TCO
#define TCO 8
#endif
#ifndef TCI
#define TCI 8
#endif
#ifndef SW
#define SW 0
#endif
#ifndef PIX
#define PIX 8
#endif

// floatp: PIX consecutive pixels (8 or 16) in one vector register.
#if PIX == 16
typedef float16 floatp;
#define vloadp vload16
#define vstorep vstore16
#else
typedef float8 floatp;
#define vloadp vload8
#define vstorep vstore8
#endif

typedef struct {
    int n, cin, h, w;
    int cout, oh, ow;
    int kh, kw, sh, sw, dh, dw, pt, pl;
    int groups, cin_g, cout_g;
} conv_geom;

// Fused epilogue activations; codes match Swift's UnaryFunction raw values. -1 = none.
inline floatp conv_activation(int op, floatp v, float a, float b) {
    switch (op) {
    case 0: return fmax(v, 0.0f);                                         // relu
    case 1: return 1.0f / (1.0f + exp(-v));                               // sigmoid
    case 2: return tanh(v);                                               // tanh
    case 3: return select(a * v, v, v > 0.0f);                            // leaky relu
    case 4: return fmin(fmax(v, a), b);                                   // clip [a, b] (ReLU6)
    case 5: return fmin(fmax(a * v + b, 0.0f), 1.0f);                     // hard sigmoid
    case 6: return v * fmin(fmax(v + 3.0f, 0.0f), 6.0f) * (1.0f / 6.0f);  // hard swish
    case 7: return v / (1.0f + exp(-v));                                  // silu
    }
    return v;
}

// Loads PIX values x[0], x[step], ..., x[(PIX-1)*step] (step = the horizontal stride, SW if fixed).
inline floatp load_strided(__global const float* x, int step) {
#if SW == 1
    return vloadp(0, x);
#elif SW == 2 && PIX == 8
    return vload16(0, x).even;
#elif SW == 2 && PIX == 16
    return (float16)(vload16(0, x).even, vload16(1, x).even);
#else
    float t[PIX];
    for (int j = 0; j < PIX; ++j) t[j] = x[j * step];
    return vloadp(0, t);
#endif
}

// Stores the first `count` (1..PIX) lanes of v at y[0], y[step], ...
inline void store_strided(__global float* y, int step, int count, floatp v) {
    if (step == 1 && count == PIX) { vstorep(v, 0, y); return; }
    float t[PIX];
    vstorep(v, 0, t);
    for (int j = 0; j < count; ++j) y[j * step] = t[j];
}

// dst[p, i, j] = (0 <= i - top < h && 0 <= j - left < w) ? src[p, i - top, j - left] : 0
// for p < planes, i < hd, j < wd (a zero-padded, possibly cropped copy of each plane).
// Work item: one destination row (zeros, a contiguous copy, zeros). Global size: [hd, planes].
__kernel void conv2d_pad(__global float* dst, __global const float* src,
                         int planes, int h, int w, int hd, int wd, int top, int left) {
    const int i = get_global_id(0), p = get_global_id(1);
    if (i >= hd || p >= planes) return;
    __global float* d = dst + (p * hd + i) * wd;
    const int si = i - top;
    if (si < 0 || si >= h) {
        for (int j = 0; j < wd; ++j) d[j] = 0.0f;
        return;
    }
    const int base = (p * h + si) * w - left;      // src[base + j] is column j - left of the row
    const int j0 = min(max(left, 0), wd);          // first column inside the source
    const int j1 = max(min(left + w, wd), j0);     // one past the last
    for (int j = 0; j < j0; ++j) d[j] = 0.0f;
    for (int j = j0; j < j1; ++j) d[j] = src[base + j];
    for (int j = j1; j < wd; ++j) d[j] = 0.0f;
}

// Epilogue shared by the forward kernels: + bias, save the pre-activation, activate, store.
inline void conv_store(__global float* y, __global float* pre, int offset, int count, floatp v,
                       __global const float* bias, int co, int has_bias, int has_pre, int act, float alpha, float beta) {
    if (has_bias) v += bias[co];
    if (has_pre) store_strided(pre + offset, 1, count, v);
    if (act >= 0) v = conv_activation(act, v, alpha, beta);
    store_strided(y + offset, 1, count, v);
}

// General convolution forward as implicit GEMM.
// y, pre: [n, cout, oh, ow]; pre (the pre-activation z) is written when has_pre.
// xp: the input zero-padded by (pt, pl) to [n, cin, hp, wp], hp >= (oh-1)*sh + (kh-1)*dh + 1,
//     wp >= (ceil(ow/PIX)*PIX - 1)*sw + (kw-1)*dw + 1 (+1 for SW == 2), so no bounds checks are needed.
// W: [cout, cin_g, kh, kw]; bias: [cout] (read when has_bias).
// Work item: TCO output channels of one group x PIX consecutive pixels of one output row.
// Global size: [ceil(ow/PIX), oh, n * groups * ceil(cout_g/TCO)].
__kernel void conv2d_forward(__global float* y, __global float* pre,
                             __global const float* xp, __global const float* W, __global const float* bias,
                             int has_bias, int has_pre, int act, float alpha, float beta,
                             conv_geom g, int hp, int wp) {
    const int ox0 = get_global_id(0) * PIX;
    const int oy = get_global_id(1);
    const int z = get_global_id(2);
    const int tiles = (g.cout_g + TCO - 1) / TCO;
    const int n = z / (g.groups * tiles);
    if (ox0 >= g.ow || oy >= g.oh || n >= g.n) return;
    const int grp = (z / tiles) % g.groups;
    const int co0 = grp * g.cout_g + (z % tiles) * TCO;
    const int co_end = (grp + 1) * g.cout_g;
    const int ksize = g.kh * g.kw;
    const int wstride = g.cin_g * ksize;

    __global const float* wrow[TCO];
    #pragma unroll
    for (int i = 0; i < TCO; ++i) wrow[i] = W + min(co0 + i, co_end - 1) * wstride;
    floatp acc[TCO];
    #pragma unroll
    for (int i = 0; i < TCO; ++i) acc[i] = 0.0f;

    const int plane = hp * wp;
    __global const float* xb = xp + (n * g.cin + grp * g.cin_g) * plane + oy * g.sh * wp + ox0 * g.sw;
    for (int ci = 0; ci < g.cin_g; ++ci) {
        __global const float* xc = xb + ci * plane;
        const int wc = ci * ksize;
        for (int ky = 0; ky < g.kh; ++ky) {
            __global const float* xr = xc + ky * g.dh * wp;
            const int wr = wc + ky * g.kw;
            for (int kx = 0; kx < g.kw; ++kx) {
                const floatp xv = load_strided(xr + kx * g.dw, g.sw);
                const int t = wr + kx;
                #pragma unroll
                for (int i = 0; i < TCO; ++i) acc[i] = fma((floatp)(wrow[i][t]), xv, acc[i]);
            }
        }
    }
    const int count = min(PIX, g.ow - ox0);
    #pragma unroll
    for (int i = 0; i < TCO; ++i) {
        const int co = co0 + i;
        if (co < co_end) conv_store(y, pre, ((n * g.cout + co) * g.oh + oy) * g.ow + ox0, count, acc[i],
                   bias, co, has_bias, has_pre, act, alpha, beta);
    }
}

// Pointwise (1x1, stride 1, no padding) convolution as a plain GEMM over flattened pixels; also
// runs the backward-to-input of a pointwise convolution (with the weight read transposed):
//   out[b, grp*M + m, p] = sum_k Wt(grp, m, k) * in[b, grp*K + k, p],  Wt = W[grp*gstride + m*ms + k*ks]
//   forward:  M = cout_g, K = cin_g, ms = cin_g, ks = 1
//   backward: M = cin_g, K = cout_g, ms = 1, ks = cin_g   (gstride = cout_g*cin_g in both)
// out, pre: [batch, groups*M, P]; in: [batch, groups*K, P]; bias: [groups*M].
// Work item: TCO output channels x PIX consecutive pixels.
// Global size: [ceil(P/PIX), groups*ceil(M/TCO), batch].
__kernel void conv2d_forward_1x1(__global float* out, __global float* pre,
                                 __global const float* in, __global const float* W, __global const float* bias,
                                 int has_bias, int has_pre, int act, float alpha, float beta,
                                 int batch, int groups, int M, int K, int P, int gstride, int ms, int ks) {
    const int p0 = get_global_id(0) * PIX;
    const int tiles = (M + TCO - 1) / TCO;
    const int grp = get_global_id(1) / tiles;
    const int m0 = (get_global_id(1) % tiles) * TCO;
    const int b = get_global_id(2);
    if (p0 >= P || grp >= groups || b >= batch) return;

    __global const float* wrow[TCO];
    #pragma unroll
    for (int i = 0; i < TCO; ++i) wrow[i] = W + grp * gstride + min(m0 + i, M - 1) * ms;
    floatp acc[TCO];
    #pragma unroll
    for (int i = 0; i < TCO; ++i) acc[i] = 0.0f;

    __global const float* src = in + (b * groups + grp) * K * P + p0;
    if (p0 + PIX <= P) {
        for (int k = 0; k < K; ++k) {
            const floatp xv = vloadp(0, src + k * P);
            const int wk = k * ks;
            #pragma unroll
            for (int i = 0; i < TCO; ++i) acc[i] = fma((floatp)(wrow[i][wk]), xv, acc[i]);
        }
    } else {
        // Tail block: clamp the pixel index (the extra lanes are never stored).
        const int last = P - 1 - p0;
        for (int k = 0; k < K; ++k) {
            __global const float* s = src + k * P;
            float t[PIX];
            for (int j = 0; j < PIX; ++j) t[j] = s[min(j, last)];
            const floatp xv = vloadp(0, t);
            const int wk = k * ks;
            #pragma unroll
            for (int i = 0; i < TCO; ++i) acc[i] = fma((floatp)(wrow[i][wk]), xv, acc[i]);
        }
    }
    const int count = min(PIX, P - p0);
    #pragma unroll
    for (int i = 0; i < TCO; ++i) {
        const int c = grp * M + m0 + i;
        if (m0 + i < M) conv_store(out, pre, (b * groups * M + c) * P + p0, count, acc[i],
                                   bias, c, has_bias, has_pre, act, alpha, beta);
    }
}

// Depthwise convolution forward (cin_g == 1; cout_g = channel multiplier, input channel co / cout_g).
// Same layouts and epilogue as conv2d_forward; the padded input must also cover the rows of the
// last row block: hp >= (ceil(oh/DWR)*DWR - 1)*sh + (kh-1)*dh + 1.
// Work item: one channel x DWR output rows x PIX pixels; each input row is loaded once per kx and
// used by every output row whose window contains it. Global size: [ceil(ow/PIX), ceil(oh/DWR), n * cout].
#ifndef DWR
#define DWR 4
#endif
__kernel void conv2d_forward_depthwise(__global float* y, __global float* pre,
                                       __global const float* xp, __global const float* W, __global const float* bias,
                                       int has_bias, int has_pre, int act, float alpha, float beta,
                                       conv_geom g, int hp, int wp) {
    const int ox0 = get_global_id(0) * PIX;
    const int oy0 = get_global_id(1) * DWR;
    const int z = get_global_id(2);
    if (ox0 >= g.ow || oy0 >= g.oh || z >= g.n * g.cout) return;
    const int n = z / g.cout, co = z % g.cout;
    const int ci = co / g.cout_g;
    __global const float* xb = xp + (n * g.cin + ci) * hp * wp + oy0 * g.sh * wp + ox0 * g.sw;
    __global const float* wk = W + co * g.kh * g.kw;
    floatp acc[DWR];
    #pragma unroll
    for (int j = 0; j < DWR; ++j) acc[j] = 0.0f;
    const int rows = (DWR - 1) * g.sh + (g.kh - 1) * g.dh + 1;
    for (int r = 0; r < rows; ++r) {
        // Kernel row of input row r for each output row j (-1 when the window skips it).
        int ky[DWR];
        #pragma unroll
        for (int j = 0; j < DWR; ++j) {
            const int t = r - j * g.sh;
            ky[j] = (t < 0 || t % g.dh != 0 || t / g.dh >= g.kh) ? -1 : t / g.dh;
        }
        __global const float* xr = xb + r * wp;
        for (int kx = 0; kx < g.kw; ++kx) {
            const floatp xv = load_strided(xr + kx * g.dw, g.sw);
            #pragma unroll
            for (int j = 0; j < DWR; ++j) {
                if (ky[j] >= 0) acc[j] = fma((floatp)(wk[ky[j] * g.kw + kx]), xv, acc[j]);
            }
        }
    }
    const int count = min(PIX, g.ow - ox0);
    #pragma unroll
    for (int j = 0; j < DWR; ++j) {
        if (oy0 + j < g.oh) conv_store(y, pre, ((n * g.cout + co) * g.oh + oy0 + j) * g.ow + ox0, count, acc[j],
                                       bias, co, has_bias, has_pre, act, alpha, beta);
    }
}

// The weight regrouped for the backward gather: wt[((grp*ksize + t)*cout_g + co)*cin_g + ci] =
// W[((grp*cout_g + co)*cin_g + ci)*ksize + t], t = ky*kw + kx, so the TCI weights of one (tap,
// output channel) are adjacent. Work item: one (group, tap, output channel) row of cin_g values.
// Global size: [cout_g, groups*ksize].
__kernel void conv2d_pack_weight(__global float* wt, __global const float* W, int groups, int cin_g, int cout_g, int ksize) {
    const int co = get_global_id(0), gt = get_global_id(1);
    if (co >= cout_g || gt >= groups * ksize) return;
    const int grp = gt / ksize, t = gt % ksize;
    __global float* dst = wt + (gt * cout_g + co) * cin_g;
    __global const float* src = W + (grp * cout_g + co) * cin_g * ksize + t;
    for (int ci = 0; ci < cin_g; ++ci) dst[ci] = src[ci * ksize];
}

// Backward-to-input of the convolution (= forward of the transposed convolution), gather form:
//   dx[n, ci, iy, ix] = bias[ci] + sum_{co in group(ci), ky, kx : oy*sh = iy + pt - ky*dh, ox*sw = ix + pl - kx*dw}
//                       W[co, ci - grp*cin_g, ky, kx] * dy[n, co, oy, ox]
// dx: [n, cin, h, w]. dyq: dy zero-padded to [n, cout, hq, wq] with qt rows above and ql columns
// left (oy + qt, ox + ql), large enough that every (oy, ox) the kernel forms is inside it.
// wt: the weight packed by conv2d_pack_weight; bias: [cin] (read when has_bias; ConvTranspose2D's bias).
// Work item: TCI input channels x PIX input pixels ix = px + sw*(PIX*b + j) of row iy, which share
// the stride phase px, so each tap (ky, kx) is valid for all lanes or none and the lanes read PIX
// consecutive dy values. Global size: [sw * ceil(ceil(w/sw)/PIX), h, n * groups * ceil(cin_g/TCI)].
__kernel void conv2d_backward_input(__global float* dx, __global const float* dyq, __global const float* wt,
                                    __global const float* bias, int has_bias,
                                    conv_geom g, int hq, int wq, int qt, int ql) {
    const int px = get_global_id(0) % g.sw;
    const int blk = get_global_id(0) / g.sw;
    const int iy = get_global_id(1);
    const int z = get_global_id(2);
    const int tiles = (g.cin_g + TCI - 1) / TCI;
    const int n = z / (g.groups * tiles);
    const int ix0 = px + g.sw * PIX * blk;
    if (ix0 >= g.w || iy >= g.h || n >= g.n) return;
    const int grp = (z / tiles) % g.groups;
    const int ci0 = (z % tiles) * TCI;            // within the group
    const int ksize = g.kh * g.kw;

    int wci[TCI];                                 // clamped input channel of each accumulator
    #pragma unroll
    for (int i = 0; i < TCI; ++i) wci[i] = min(ci0 + i, g.cin_g - 1);
    floatp acc[TCI];
    #pragma unroll
    for (int i = 0; i < TCI; ++i) acc[i] = 0.0f;

    const int qplane = hq * wq;
    __global const float* dyg = dyq + (n * g.cout + grp * g.cout_g) * qplane;
    __global const float* wg = wt + grp * ksize * g.cout_g * g.cin_g;
    for (int ky = 0; ky < g.kh; ++ky) {
        const int ny = iy + g.pt - ky * g.dh + qt * g.sh;     // >= 0 by the choice of qt
        if (ny % g.sh != 0) continue;
        __global const float* dyr = dyg + (ny / g.sh) * wq;
        for (int kx = 0; kx < g.kw; ++kx) {
            const int nx = px + g.pl - kx * g.dw + ql * g.sw;  // >= 0 by the choice of ql
            if (nx % g.sw != 0) continue;
            __global const float* dyc = dyr + nx / g.sw + PIX * blk;
            __global const float* wtap = wg + (ky * g.kw + kx) * g.cout_g * g.cin_g;
            for (int co = 0; co < g.cout_g; ++co) {
                const floatp dv = vloadp(0, dyc + co * qplane);
                __global const float* wc = wtap + co * g.cin_g;
                #pragma unroll
                for (int i = 0; i < TCI; ++i) acc[i] = fma((floatp)(wc[wci[i]]), dv, acc[i]);
            }
        }
    }
    const int count = min(PIX, (g.w - ix0 + g.sw - 1) / g.sw);
    #pragma unroll
    for (int i = 0; i < TCI; ++i) {
        const int ci = grp * g.cin_g + ci0 + i;
        if (ci0 + i < g.cin_g) {
            floatp v = acc[i];
            if (has_bias) v += bias[ci];
            store_strided(dx + ((n * g.cin + ci) * g.h + iy) * g.w + ix0, g.sw, count, v);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GEMM route (PoCL): im2col into a column panel + a register-blocked GEMM (matmul.cl's 8×16
// microkernel with this file's epilogue), backward as the GEMM Wᵀ·dy + a col2im gather. Groups == 1.
// K = cin*kh*kw, P = oh*ow, ldb = round_up(P, 16) (panel rows readable 16 columns past each block).

// col[b, r, p] = x[b, ci, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw] (0 outside x) for p = oy*ow + ox < P,
// 0 for P <= p < ldb; r = (ci*kh + ky)*kw + kx. col: [n, K, ldb]; x: [n, cin, h, w].
// Work item: one row r of one image. Global size: [K, n].
__kernel void conv2d_im2col(__global float* col, __global const float* x, conv_geom g, int ldb) {
    const int r = get_global_id(0), b = get_global_id(1);
    const int kk = g.kh * g.kw;
    if (r >= g.cin * kk || b >= g.n) return;
    const int ci = r / kk, ky = (r % kk) / g.kw, kx = r % g.kw;
    __global const float* xc = x + (b * g.cin + ci) * g.h * g.w;
    __global float* d = col + (b * g.cin * kk + r) * ldb;
    int p = 0;
    for (int oy = 0; oy < g.oh; ++oy) {
        const int iy = oy * g.sh - g.pt + ky * g.dh;
        const bool rowIn = iy >= 0 && iy < g.h;
        __global const float* xr = xc + iy * g.w;
        for (int ox = 0; ox < g.ow; ++ox, ++p) {
            const int ix = ox * g.sw - g.pl + kx * g.dw;
            d[p] = (rowIn && ix >= 0 && ix < g.w) ? xr[ix] : 0.0f;
        }
    }
    for (; p < ldb; ++p) d[p] = 0.0f;
}

// dx[b, ci, iy, ix] = (has_bias ? bias[ci] : 0)
//     + sum_{ky, kx} dcol[b, (ci*kh + ky)*kw + kx, oy*ow + ox] over oy*sh = iy + pt - ky*dh, ox*sw = ix + pl - kx*dw
//       with 0 <= oy < oh, 0 <= ox < ow (the adjoint of conv2d_im2col; a gather, no atomics).
// dx: [n, cin, h, w]; dcol: [n, K, P]. Work item: one row iy of one (b, ci). Global size: [h, n*cin].
__kernel void conv2d_col2im(__global float* dx, __global const float* dcol, __global const float* bias, int has_bias,
                            conv_geom g) {
    const int iy = get_global_id(0), z = get_global_id(1);
    if (iy >= g.h || z >= g.n * g.cin) return;
    const int b = z / g.cin, ci = z % g.cin;
    const int kk = g.kh * g.kw, P = g.oh * g.ow;
    __global const float* dc = dcol + (b * g.cin + ci) * kk * P;
    __global float* out = dx + (z * g.h + iy) * g.w;
    const float b0 = has_bias ? bias[ci] : 0.0f;
    for (int ix = 0; ix < g.w; ++ix) out[ix] = b0;
    for (int ky = 0; ky < g.kh; ++ky) {
        const int ty = iy + g.pt - ky * g.dh;
        if (ty < 0 || ty % g.sh != 0 || ty / g.sh >= g.oh) continue;
        for (int kx = 0; kx < g.kw; ++kx) {
            __global const float* row = dc + (ky * g.kw + kx) * P + (ty / g.sh) * g.ow;
            for (int ix = 0; ix < g.w; ++ix) {
                const int tx = ix + g.pl - kx * g.dw;
                if (tx >= 0 && tx % g.sw == 0 && tx / g.sw < g.ow) out[ix] += row[tx / g.sw];
            }
        }
    }
}

// out[b, m, p] = act(sum_k A(m, k) * Bp[b*b_bs + k*ldb + p] + bias[m]) for m < M, p < N (pre = the value
// before act when has_pre): matmul.cl's matmul_8x16 microkernel (8 rows x 16 columns in eight float16
// accumulators) with a per-row bias and conv_store's fused activation. A(m, k) = A[m*a_rs + k*a_cs]
// (the weight, shared by the batch); Bp rows readable 16 columns past every block start (ldb >= round_up(N, 16)).
// out, pre: [batch, M, N]. Needs PIX == 16. Work items along dimension 0 walk down M, so consecutive
// items reuse the same B columns from cache. Global size: [ceil(M/8), ceil(N/16), batch].
#if PIX == 16
__kernel void conv2d_gemm_8x16(__global float* out, __global float* pre,
                               __global const float* A, int a_rs, int a_cs,
                               __global const float* Bp, int b_bs, int ldb,
                               __global const float* bias, int has_bias, int has_pre, int act, float alpha, float beta,
                               int M, int N, int K) {
    const int m0 = get_global_id(0) * 8;
    const int n0 = get_global_id(1) * 16;
    const int b = get_global_id(2);
    if (m0 >= M || n0 >= N) return;
    __global const float* bp = Bp + b * b_bs + n0;
    __global const float* a[8];
    #pragma unroll
    for (int i = 0; i < 8; ++i) a[i] = A + min(m0 + i, M - 1) * a_rs;
    float16 c[8];
    #pragma unroll
    for (int i = 0; i < 8; ++i) c[i] = 0.0f;
    int ak = 0;
    for (int k = 0; k < K; ++k, ak += a_cs) {
        const float16 bv = vload16(0, bp + k * ldb);
        #pragma unroll
        for (int i = 0; i < 8; ++i) c[i] = fma((float16)(a[i][ak]), bv, c[i]);
    }
    const int count = min(16, N - n0);
    #pragma unroll
    for (int i = 0; i < 8; ++i) {
        if (m0 + i < M) conv_store(out, pre, (b * M + m0 + i) * N + n0, count, c[i],
                                   bias, m0 + i, has_bias, has_pre, act, alpha, beta);
    }
}
#endif
