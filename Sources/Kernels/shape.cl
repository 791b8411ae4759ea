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
