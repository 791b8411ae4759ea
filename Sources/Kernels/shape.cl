// shape.cl — data movement: fill and strided copy. Transpose, slice (and its backward),
// concat (and its backward) and broadcast (expand) are all one strided copy.

// dst[i] = value, i in [0, n). Global size: n.
__kernel void fill(__global float* dst, int n, float value) {
    int i = get_global_id(0);
    if (i < n) dst[i] = value;
}

// For each linear index i over m.dims (n = prod dims):
//   dst[dst_offset + off0(i)] = src[src_offset + off1(i)].
// Global size: n.
__kernel void copy_strided(__global float* dst, int dst_offset,
                           __global const float* src, int src_offset,
                           int n, index_map m) {
    int i = get_global_id(0);
    if (i >= n) return;
    int2 o = index_map_offsets(&m, i);
    dst[dst_offset + o.x] = src[src_offset + o.y];
}

// copy_strided for maps whose innermost axis (length len) is contiguous in both dst and src (head
// splits and merges, slices of rows, concat): m maps the row index (the outer axes) to the two row
// offsets, so the index arithmetic is paid once per row and the row moves as 16-float vectors.
// Global size: rows.
__kernel void copy_rows(__global float* dst, int dst_offset,
                        __global const float* src, int src_offset,
                        int rows, int len, index_map m) {
    int r = get_global_id(0);
    if (r >= rows) return;
    int2 o = index_map_offsets(&m, r);
    __global float* d = dst + dst_offset + o.x;
    __global const float* s = src + src_offset + o.y;
    int j = 0;
    for (; j + 16 <= len; j += 16) vstore16(vload16(0, s + j), 0, d + j);
    for (; j < len; ++j) d[j] = s[j];
}
