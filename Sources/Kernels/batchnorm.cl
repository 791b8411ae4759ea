// batchnorm.cl — inference batch normalization over x [batch, channels, inner] (channels = axis 1).

// y[i] = (x[i] - mean[c]) * gamma[c] / sqrt(var[c] + eps) + beta[c], c = (i / inner) % channels.
// y, x: [batch, channels, inner], n = batch*channels*inner; gamma, beta, mean, var: [channels].
// Global size: n.
__kernel void batchnorm_forward(__global float* y, __global const float* x,
                                __global const float* gamma, __global const float* beta,
                                __global const float* mean, __global const float* var,
                                int n, int channels, int inner, float eps) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int c = (i / inner) % channels;
    const float s = gamma[c] * rsqrt(var[c] + eps);
    y[i] = (x[i] - mean[c]) * s + beta[c];
}

// dx[i] = dy[i] * gamma[c] / sqrt(var[c] + eps). Same layouts. Global size: n.
__kernel void batchnorm_backward_input(__global float* dx, __global const float* dy,
                                       __global const float* gamma, __global const float* var,
                                       int n, int channels, int inner, float eps) {
    const int i = get_global_id(0);
    if (i >= n) return;
    const int c = (i / inner) % channels;
    dx[i] = dy[i] * gamma[c] * rsqrt(var[c] + eps);
}
