// pool.cl — 2-D max and average pooling over NCHW planes, forward and backward-to-input.
// Backward kernels gather: each work item owns one input pixel and visits the (at most kh*kw)
// windows that contain it, so there are no atomics.
//
// Geometry (struct pool_geom, matches Swift's PoolGeometry): x [planes, h, w] -> y [planes, oh, ow],
// window tap (ky, kx) of output (oy, ox) at (oy*sh - pt + ky*dh, ox*sw - pl + kx*dw).

typedef struct {
    int planes, h, w, oh, ow;
    int kh, kw, sh, sw, dh, dw;
    int pt, pl, pb, pr;
} pool_geom;

// Number of taps k in [0, taps) with lo <= o*s - pad + k*d < hi.
inline int pool_taps(int o, int s, int pad, int d, int taps, int lo, int hi) {
    int count = 0;
    for (int k = 0; k < taps; ++k) {
        int p = o * s - pad + k * d;
        count += (p >= lo && p < hi) ? 1 : 0;
    }
    return count;
}

// Runs BODY for every tap (ky, kx) of output window (oy, ox) that lies inside the input, in row-major
// window order, with the tap's input position in `iy`, `ix` (the forward loops of both poolings).
#define POOL_FOR_EACH_TAP(g, oy, ox, ...)                              \
    for (int ky = 0; ky < (g).kh; ++ky) {                              \
        const int iy = (oy) * (g).sh - (g).pt + ky * (g).dh;           \
        if (iy < 0 || iy >= (g).h) continue;                           \
        for (int kx = 0; kx < (g).kw; ++kx) {                          \
            const int ix = (ox) * (g).sw - (g).pl + kx * (g).dw;       \
            if (ix < 0 || ix >= (g).w) continue;                       \
            __VA_ARGS__                                                \
        }                                                              \
    }

// Runs BODY for every output window (oy, ox) with a tap on input pixel (iy, ix), in (ky, kx) order,
// with the window in `oy`, `ox` (the gather of the average-pool backward: no atomics).
#define POOL_FOR_EACH_WINDOW_CONTAINING(g, iy, ix, ...)                \
    for (int ky = 0; ky < (g).kh; ++ky) {                              \
        const int ny = (iy) + (g).pt - ky * (g).dh;                    \
        if (ny < 0 || ny % (g).sh != 0) continue;                      \
        const int oy = ny / (g).sh;                                    \
        if (oy >= (g).oh) continue;                                    \
        for (int kx = 0; kx < (g).kw; ++kx) {                          \
            const int nx = (ix) + (g).pl - kx * (g).dw;                \
            if (nx < 0 || nx % (g).sw != 0) continue;                  \
            const int ox = nx / (g).sw;                                \
            if (ox >= (g).ow) continue;                                \
            __VA_ARGS__                                                \
        }                                                              \
    }

// The divisor of average pooling at (oy, ox): taps inside the input, or inside the padded input.
inline int avgpool_count(const pool_geom* g, int oy, int ox, int include_pad) {
    int rows = include_pad ? pool_taps(oy, g->sh, g->pt, g->dh, g->kh, -g->pt, g->h + g->pb)
                           : pool_taps(oy, g->sh, g->pt, g->dh, g->kh, 0, g->h);
    int cols = include_pad ? pool_taps(ox, g->sw, g->pl, g->dw, g->kw, -g->pl, g->w + g->pr)
                           : pool_taps(ox, g->sw, g->pl, g->dw, g->kw, 0, g->w);
    return rows * cols;
}

// y[p, oy, ox] = max over the window's taps inside x; argmax = flat index iy*w + ix of the first
// maximum (row-major window order), as a float; a window without taps gives y = 0, argmax = -1.
// y, argmax: [planes, oh, ow]; x: [planes, h, w]. Global size: [ow, oh, planes].
__kernel void maxpool2d_forward(__global float* y, __global float* argmax, __global const float* x, pool_geom g) {
    const int ox = get_global_id(0), oy = get_global_id(1), p = get_global_id(2);
    if (ox >= g.ow || oy >= g.oh || p >= g.planes) return;
    __global const float* plane = x + p * g.h * g.w;
    float best = 0.0f;
    int arg = -1;
    POOL_FOR_EACH_TAP(g, oy, ox, {
        const float v = plane[iy * g.w + ix];
        if (arg < 0 || v > best) { best = v; arg = iy * g.w + ix; }
    });
    const int o = (p * g.oh + oy) * g.ow + ox;
    y[o] = best;
    argmax[o] = (float)arg;
}

// dx[p, iy, ix] = sum of dy[p, oy, ox] over the windows whose argmax is iy*w + ix.
// Gather without atomics: window (oy, ox) spans input rows [oy*sh - pt, oy*sh - pt + (kh-1)*dh], so only
// oy in [ceil((iy + pt - (kh-1)*dh) / sh), floor((iy + pt) / sh)] can hold (iy, ix) — at most
// ceil(((kh-1)*dh + 1) / sh) rows (likewise columns); no tap test is needed, since argmax == here already
// says (iy, ix) is a tap of that window. Windows are visited in ascending (oy, ox) order, the order of the
// CPU reference's scatter, so the sums are bit-identical to it.
// dx: [planes, h, w]; dy, argmax: [planes, oh, ow]. Global size: [w, h, planes].
__kernel void maxpool2d_backward_input(__global float* dx, __global const float* dy, __global const float* argmax,
                                       pool_geom g) {
    const int ix = get_global_id(0), iy = get_global_id(1), p = get_global_id(2);
    if (ix >= g.w || iy >= g.h || p >= g.planes) return;
    const int here = iy * g.w + ix;
    const int ny = iy + g.pt, nx = ix + g.pl;
    const int ry = ny - (g.kh - 1) * g.dh, rx = nx - (g.kw - 1) * g.dw;
    const int oy0 = ry <= 0 ? 0 : (ry + g.sh - 1) / g.sh, oy1 = min(g.oh - 1, ny / g.sh);
    const int ox0 = rx <= 0 ? 0 : (rx + g.sw - 1) / g.sw, ox1 = min(g.ow - 1, nx / g.sw);
    __global const float* a = argmax + p * g.oh * g.ow;
    __global const float* d = dy + p * g.oh * g.ow;
    float sum = 0.0f;
    for (int oy = oy0; oy <= oy1; ++oy) {
        for (int ox = ox0; ox <= ox1; ++ox) {
            const int o = oy * g.ow + ox;
            if ((int)a[o] == here) sum += d[o];
        }
    }
    dx[(p * g.h + iy) * g.w + ix] = sum;
}

// y[p, oy, ox] = (sum of the window's taps inside x) / avgpool_count (0 when the count is 0).
// y: [planes, oh, ow]; x: [planes, h, w]. Global size: [ow, oh, planes].
__kernel void avgpool2d_forward(__global float* y, __global const float* x, pool_geom g, int include_pad) {
    const int ox = get_global_id(0), oy = get_global_id(1), p = get_global_id(2);
    if (ox >= g.ow || oy >= g.oh || p >= g.planes) return;
    __global const float* plane = x + p * g.h * g.w;
    float sum = 0.0f;
    POOL_FOR_EACH_TAP(g, oy, ox, { sum += plane[iy * g.w + ix]; });
    const int count = avgpool_count(&g, oy, ox, include_pad);
    y[(p * g.oh + oy) * g.ow + ox] = count > 0 ? sum / (float)count : 0.0f;
}

// dx[p, iy, ix] = sum over the windows containing (iy, ix) of dy[p, oy, ox] / avgpool_count(oy, ox).
// dx: [planes, h, w]; dy: [planes, oh, ow]. Global size: [w, h, planes].
__kernel void avgpool2d_backward_input(__global float* dx, __global const float* dy, pool_geom g, int include_pad) {
    const int ix = get_global_id(0), iy = get_global_id(1), p = get_global_id(2);
    if (ix >= g.w || iy >= g.h || p >= g.planes) return;
    const int base = p * g.oh * g.ow;
    float sum = 0.0f;
    POOL_FOR_EACH_WINDOW_CONTAINING(g, iy, ix, {
        const int count = avgpool_count(&g, oy, ox, include_pad);
        if (count > 0) sum += dy[base + oy * g.ow + ox] / (float)count;
    });
    dx[(p * g.h + iy) * g.w + ix] = sum;
}
