// resize.cl — separable two-tap resize (nearest and bilinear) of NCHW planes, forward and
// backward-to-input (gather form, no atomics).
//
// Per-axis tables (built on the host, Swift's ResizeAxisTable.packed), floats:
//   t[4*o + 0..3] = (i0, i1, w0, w1) for output index o in [0, out)
//   t[4*out + 2*i + 0..1] = (first, last): outputs first..last-1 read input index i

// y[p, oy, ox] = sum_{a,b} wy_a * wx_b * x[p, iy_a, ix_b].
// y: [planes, oh, ow]; x: [planes, h, w]; ty: table of H (out oh, in h); tx: table of W.
// Global size: [ow, oh, planes].
__kernel void resize_forward(__global float* y, __global const float* x,
                             __global const float* ty, __global const float* tx,
                             int planes, int h, int w, int oh, int ow) {
    const int ox = get_global_id(0), oy = get_global_id(1), p = get_global_id(2);
    if (ox >= ow || oy >= oh || p >= planes) return;
    const float4 ry = vload4(oy, ty), rx = vload4(ox, tx);
    __global const float* plane = x + p * h * w;
    const int y0 = (int)ry.s0 * w, y1 = (int)ry.s1 * w, x0 = (int)rx.s0, x1 = (int)rx.s1;
    const float top = rx.s2 * plane[y0 + x0] + rx.s3 * plane[y0 + x1];
    const float bottom = rx.s2 * plane[y1 + x0] + rx.s3 * plane[y1 + x1];
    y[(p * oh + oy) * ow + ox] = ry.s2 * top + ry.s3 * bottom;
}

// Weight with which output o (table row r = (i0, i1, w0, w1)) reads input i.
inline float resize_weight(float4 r, int i) {
    return ((int)r.s0 == i ? r.s2 : 0.0f) + ((int)r.s1 == i ? r.s3 : 0.0f);
}

// dx[p, iy, ix] = sum over oy in range_y(iy), ox in range_x(ix) of wy(oy, iy) * wx(ox, ix) * dy[p, oy, ox].
// dx: [planes, h, w]; dy: [planes, oh, ow]. Global size: [w, h, planes].
__kernel void resize_backward_input(__global float* dx, __global const float* dy,
                                    __global const float* ty, __global const float* tx,
                                    int planes, int h, int w, int oh, int ow) {
    const int ix = get_global_id(0), iy = get_global_id(1), p = get_global_id(2);
    if (ix >= w || iy >= h || p >= planes) return;
    const int oy0 = (int)ty[4 * oh + 2 * iy], oy1 = (int)ty[4 * oh + 2 * iy + 1];
    const int ox0 = (int)tx[4 * ow + 2 * ix], ox1 = (int)tx[4 * ow + 2 * ix + 1];
    __global const float* plane = dy + p * oh * ow;
    float sum = 0.0f;
    for (int oy = oy0; oy < oy1; ++oy) {
        const float wy = resize_weight(vload4(oy, ty), iy);
        if (wy == 0.0f) continue;
        float row = 0.0f;
        for (int ox = ox0; ox < ox1; ++ox) row += resize_weight(vload4(ox, tx), ix) * plane[oy * ow + ox];
        sum += wy * row;
    }
    dx[(p * h + iy) * w + ix] = sum;
}
