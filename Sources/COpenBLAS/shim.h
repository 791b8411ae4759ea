#ifndef AMGPU_COPENBLAS_SHIM_H
#define AMGPU_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
