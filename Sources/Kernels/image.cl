// image.cl — image-side kernels of activation maximization: affine warp (bilinear, align_corners
// = false) forward and gather backward, and lucid's blur step.

// Per-image warp parameters (16 floats, see AffineWarp.kernelParameters in Swift):
//   p[0..5]   index-space forward map: sx = p0*xo + p1*yo + p2, sy = p3*xo + p4*yo + p5
//   p[6..11]  its inverse: xo = p6*sx + p7*sy + p8, yo = p9*sx + p10*sy + p11
//   p[12..15] range of the unclamped (sx, sy) over the output grid, widened by 1: sx_lo, sx_hi, sy_lo, sy_hi

// Value of the padded input at integer index (i, j): the image inside, pad_value in the band of
// `pad` pixels around it, fill beyond.
inline float warp_fetch(__global const float* plane, int i, int j, int W, int H, int pad,
                        float pad_value, float fill) {
    if (i >= 0 && i < W && j >= 0 && j < H) return plane[j * W + i];
    if (i >= -pad && i < W + pad && j >= -pad && j < H + pad) return pad_value;
    return fill;
}

// y[r, c, yo, xo] = bilinear sample of x[r / K, c] at M_r(xo + 0.5, yo + 0.5) − 0.5 (index space),
// K = copies. x: [N, C, H, W], y: [N·K, C, Ho, Wo], params: [1 or N·K, 16]. replicate != 0 clamps
// the sample point into the padded image instead of reading `fill` outside it.
// Global size: [Wo, Ho, N·K]; each work item does every channel of one output pixel.
__kernel void affine_warp_forward(__global float* y, __global const float* x, __global const float* params,
                                  int C, int H, int W, int Ho, int Wo, int pad, float pad_value, float fill,
                                  int replicate, int per_image, int K) {
    const int xo = get_global_id(0), yo = get_global_id(1), r = get_global_id(2);
    if (xo >= Wo || yo >= Ho) return;
    const int n = r / K;
    __global const float* p = params + (per_image ? r * 16 : 0);
    float sx = p[0] * (float)xo + p[1] * (float)yo + p[2];
    float sy = p[3] * (float)xo + p[4] * (float)yo + p[5];
    if (replicate) {
        sx = clamp(sx, (float)(-pad), (float)(W + pad - 1));
        sy = clamp(sy, (float)(-pad), (float)(H + pad - 1));
    }
    const float fx0 = floor(sx), fy0 = floor(sy);
    const int x0 = (int)fx0, y0 = (int)fy0;
    const float fx = sx - fx0, fy = sy - fy0;
    for (int c = 0; c < C; ++c) {
        __global const float* plane = x + (size_t)(n * C + c) * H * W;
        float top = (1.0f - fx) * warp_fetch(plane, x0, y0, W, H, pad, pad_value, fill)
                  + fx * warp_fetch(plane, x0 + 1, y0, W, H, pad, pad_value, fill);
        float bottom = (1.0f - fx) * warp_fetch(plane, x0, y0 + 1, W, H, pad, pad_value, fill)
                     + fx * warp_fetch(plane, x0 + 1, y0 + 1, W, H, pad, pad_value, fill);
        y[((size_t)(r * C + c) * Ho + yo) * Wo + xo] = (1.0f - fy) * top + fy * bottom;
    }
}

// dx[n, c, j, i] = Σ_k Σ_(yo, xo) dy[n·K + k, c, yo, xo] · max(0, 1 − |sx − i|) · max(0, 1 − |sy − j|).
// Gather without atomics: input pixel (i, j) only receives from samples in (i−1, i+1) × (j−1, j+1)
// (extended to the grid's range where replicate clamping piles samples onto an edge); that box's
// inverse image is a parallelogram whose bounding box (+1 pixel margin) is the loop range.
// dy: [N·K, C, Ho, Wo], dx: [N, C, H, W]. Global size: [W, H, N].
__kernel void affine_warp_backward_input(__global float* dx, __global const float* dy, __global const float* params,
                                         int C, int H, int W, int Ho, int Wo, int pad, int replicate, int per_image,
                                         int K) {
    const int i = get_global_id(0), j = get_global_id(1), n = get_global_id(2);
    if (i >= W || j >= H) return;
    for (int c = 0; c < C; ++c) dx[((size_t)(n * C + c) * H + j) * W + i] = 0.0f;
    const float fi = (float)i, fj = (float)j;

    for (int k = 0; k < K; ++k) {
        const int r = n * K + k;
        __global const float* p = params + (per_image ? r * 16 : 0);
        float lx = (float)(i - 1), hx = (float)(i + 1), ly = (float)(j - 1), hy = (float)(j + 1);
        if (replicate) {
            const float lo_x = (float)(-pad), hi_x = (float)(W + pad - 1);
            const float lo_y = (float)(-pad), hi_y = (float)(H + pad - 1);
            if (lo_x > lx && lo_x < hx) lx = p[12];
            if (hi_x > lx && hi_x < hx) hx = p[13];
            if (lo_y > ly && lo_y < hy) ly = p[14];
            if (hi_y > ly && hi_y < hy) hy = p[15];
        }
        lx = fmax(lx, p[12]); hx = fmin(hx, p[13]);
        ly = fmax(ly, p[14]); hy = fmin(hy, p[15]);
        if (lx > hx || ly > hy) continue;

        // Inverse images of the box corners, in output index space.
        const float ox0 = p[6] * lx + p[7] * ly + p[8], oy0 = p[9] * lx + p[10] * ly + p[11];
        const float ox1 = p[6] * hx + p[7] * ly + p[8], oy1 = p[9] * hx + p[10] * ly + p[11];
        const float ox2 = p[6] * lx + p[7] * hy + p[8], oy2 = p[9] * lx + p[10] * hy + p[11];
        const float ox3 = p[6] * hx + p[7] * hy + p[8], oy3 = p[9] * hx + p[10] * hy + p[11];
        const float mnx = fmin(fmin(ox0, ox1), fmin(ox2, ox3)), mxx = fmax(fmax(ox0, ox1), fmax(ox2, ox3));
        const float mny = fmin(fmin(oy0, oy1), fmin(oy2, oy3)), mxy = fmax(fmax(oy0, oy1), fmax(oy2, oy3));
        const int xb = (int)clamp(floor(mnx) - 1.0f, 0.0f, (float)(Wo - 1));
        const int xe = (int)clamp(ceil(mxx) + 1.0f, 0.0f, (float)(Wo - 1));
        const int yb = (int)clamp(floor(mny) - 1.0f, 0.0f, (float)(Ho - 1));
        const int ye = (int)clamp(ceil(mxy) + 1.0f, 0.0f, (float)(Ho - 1));

        for (int yo = yb; yo <= ye; ++yo) {
            for (int xo = xb; xo <= xe; ++xo) {
                float sx = p[0] * (float)xo + p[1] * (float)yo + p[2];
                float sy = p[3] * (float)xo + p[4] * (float)yo + p[5];
                if (replicate) {
                    sx = clamp(sx, (float)(-pad), (float)(W + pad - 1));
                    sy = clamp(sy, (float)(-pad), (float)(H + pad - 1));
                }
                const float wx = 1.0f - fabs(sx - fi), wy = 1.0f - fabs(sy - fj);
                if (wx <= 0.0f || wy <= 0.0f) continue;
                const float wgt = wx * wy;
                for (int c = 0; c < C; ++c) {
                    dx[((size_t)(n * C + c) * H + j) * W + i] += wgt * dy[((size_t)(r * C + c) * Ho + yo) * Wo + xo];
                }
            }
        }
    }
}

// y = (1 − amount)·x + amount·blur(x): lucid's blur_input_each_step kernel (3×3, centre 1, ring 0.5),
// zero padded and normalised by the same convolution of ones. x, y: [P, H, W] planes.
// Global size: [W, H, P].
__kernel void blur_step(__global float* y, __global const float* x, int H, int W, float amount) {
    const int i = get_global_id(0), j = get_global_id(1), plane = get_global_id(2);
    if (i >= W || j >= H) return;
    __global const float* src = x + (size_t)plane * H * W;
    float sum = 0.0f, norm = 0.0f;
    for (int dj = -1; dj <= 1; ++dj) {
        const int jj = j + dj;
        if (jj < 0 || jj >= H) continue;
        for (int di = -1; di <= 1; ++di) {
            const int ii = i + di;
            if (ii < 0 || ii >= W) continue;
            const float k = (di == 0 && dj == 0) ? 1.0f : 0.5f;
            sum += k * src[jj * W + ii];
            norm += k;
        }
    }
    y[(size_t)plane * H * W + j * W + i] = (1.0f - amount) * src[j * W + i] + amount * sum / norm;
}

// y[p, j, i] = x[p, (j − sy) mod H, (i − sx) mod W] (torch.roll over the last two axes), with
// 0 ≤ sy < H and 0 ≤ sx < W. x, y: [P, H, W]. Global size: [W, H, P]. Backward is the roll by (−sy, −sx).
__kernel void roll_forward(__global float* y, __global const float* x, int H, int W, int sy, int sx) {
    const int i = get_global_id(0), j = get_global_id(1), p = get_global_id(2);
    if (i >= W || j >= H) return;
    int jj = j - sy, ii = i - sx;
    if (jj < 0) jj += H;
    if (ii < 0) ii += W;
    y[((size_t)p * H + j) * W + i] = x[((size_t)p * H + jj) * W + ii];
}

// y[r, c, q] = ab[2e] · x[r / K, c, q] + ab[2e + 1], e = shared ? c : r·C + c (K = copies).
// x: [N, C, HW], y: [N·K, C, HW], ab: (scale, shift) pairs. Global size: [HW, C, N·K].
__kernel void channel_affine_forward(__global float* y, __global const float* x, __global const float* ab,
                                     int C, int HW, int K, int shared) {
    const int q = get_global_id(0), c = get_global_id(1), r = get_global_id(2);
    if (q >= HW) return;
    const int e = shared ? c : r * C + c;
    y[((size_t)r * C + c) * HW + q] = ab[2 * e] * x[((size_t)(r / K) * C + c) * HW + q] + ab[2 * e + 1];
}

// dx[n, c, q] = Σ_k ab[2e_k] · dy[n·K + k, c, q], e_k = shared ? c : (n·K + k)·C + c.
// dy: [N·K, C, HW], dx: [N, C, HW]. Global size: [HW, C, N].
__kernel void channel_affine_backward_input(__global float* dx, __global const float* dy, __global const float* ab,
                                            int C, int HW, int K, int shared) {
    const int q = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
    if (q >= HW) return;
    float acc = 0.0f;
    for (int k = 0; k < K; ++k) {
        const int r = n * K + k;
        const int e = shared ? c : r * C + c;
        acc += ab[2 * e] * dy[((size_t)r * C + c) * HW + q];
    }
    dx[((size_t)n * C + c) * HW + q] = acc;
}

// Pixel-pair offsets (a_y, a_x, b_y, b_x) of NeighborDifferences' kinds 0…3:
// horizontal, vertical, diagonal, anti-diagonal.
inline int4 nd_offsets(int kind) {
    switch (kind) {
    case 0: return (int4)(0, 1, 0, 0);
    case 1: return (int4)(1, 0, 0, 0);
    case 2: return (int4)(1, 1, 0, 0);
    default: return (int4)(1, 0, 0, 1);
    }
}

// f(d) = |d| (power 1) or d² (power 2), and f'(d).
inline float nd_value(float d, int power) { return power == 1 ? fabs(d) : d * d; }
inline float nd_slope(float d, int power) { return power == 1 ? (d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f)) : 2.0f * d; }

// y[nc, k] = Σ_p f(x[nc, p + a_k] − x[nc, p + b_k]) over the positions where both pixels exist.
// kind k of K is (codes >> 2k) & 3. x: [NC, H, W], y: [NC, K]. Global size: [K, NC].
// Each work item sums one plane serially, row by row (row partial sums limit rounding).
__kernel void neighbor_differences_forward(__global float* y, __global const float* x, int H, int W, int K, int codes,
                                           int power) {
    const int k = get_global_id(0), plane = get_global_id(1);
    if (k >= K) return;
    const int4 o = nd_offsets((codes >> (2 * k)) & 3);
    const int rows = H - max(o.x, o.z), cols = W - max(o.y, o.w);
    __global const float* src = x + (size_t)plane * H * W;
    float total = 0.0f;
    for (int j = 0; j < rows; ++j) {
        __global const float* ra = src + (j + o.x) * W + o.y;
        __global const float* rb = src + (j + o.z) * W + o.w;
        float row = 0.0f;
        for (int i = 0; i < cols; ++i) row += nd_value(ra[i] - rb[i], power);
        total += row;
    }
    y[(size_t)plane * K + k] = total;
}

// dx[nc, p] = Σ_k g[nc, k] · ( f'(d_k(p − a_k)) − f'(d_k(p − b_k)) ), each term only where that pair
// exists; d_k(q) = x[q + a_k] − x[q + b_k]. x, dx: [NC, H, W], g: [NC, K]. Global size: [W, H, NC].
__kernel void neighbor_differences_backward_input(__global float* dx, __global const float* g, __global const float* x,
                                                  int H, int W, int K, int codes, int power) {
    const int i = get_global_id(0), j = get_global_id(1), plane = get_global_id(2);
    if (i >= W || j >= H) return;
    __global const float* src = x + (size_t)plane * H * W;
    float acc = 0.0f;
    for (int k = 0; k < K; ++k) {
        const int4 o = nd_offsets((codes >> (2 * k)) & 3);
        const int rows = H - max(o.x, o.z), cols = W - max(o.y, o.w);
        const float gk = g[(size_t)plane * K + k];
        // As the first pixel of a pair: q = p − a.
        int qy = j - o.x, qx = i - o.y;
        if (qy >= 0 && qy < rows && qx >= 0 && qx < cols)
            acc += gk * nd_slope(src[(qy + o.x) * W + qx + o.y] - src[(qy + o.z) * W + qx + o.w], power);
        // As the second pixel: q = p − b.
        qy = j - o.z; qx = i - o.w;
        if (qy >= 0 && qy < rows && qx >= 0 && qx < cols)
            acc -= gk * nd_slope(src[(qy + o.x) * W + qx + o.y] - src[(qy + o.z) * W + qx + o.w], power);
    }
    dx[((size_t)plane * H + j) * W + i] = acc;
}
