// common.cl — definitions prepended to every other kernel file when it is built.
// Layout rules: tensors are dense row-major fp32; element offsets are 32-bit ints.

#define MAX_RANK 8

// Maps a linear index over dims (row-major) to two element offsets:
// off_k = sum_axis coord_axis * s_k[axis]. Stride 0 broadcasts an axis. Matches Swift's IndexMap.
typedef struct {
    int rank;
    int dims[MAX_RANK];
    int s0[MAX_RANK];
    int s1[MAX_RANK];
} index_map;

// Decomposes linear index i over m's dims and returns both offsets.
inline int2 index_map_offsets(const index_map* m, int i) {
    int o0 = 0, o1 = 0;
    for (int axis = m->rank - 1; axis >= 0; --axis) {
        int d = m->dims[axis];
        int c = i % d;
        i /= d;
        o0 += c * m->s0[axis];
        o1 += c * m->s1[axis];
    }
    return (int2)(o0, o1);
}
