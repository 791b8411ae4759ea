#ifndef AMGPU_COPENBLAS_SHIM_H
#define AMGPU_COPENBLAS_SHIM_H
#include <stddef.h>
#include <cblas.h>

/* LAPACK from OpenBLAS (Debian's libopenblas exports the Fortran symbols; cblas.h does not declare them).
   ssyevd: eigenvalues (ascending) and, with jobz = 'V', eigenvectors (columns of a, column-major) of a
   real symmetric n×n matrix. The trailing size_t arguments are gfortran's hidden lengths of jobz and uplo. */
void ssyevd_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w,
             float *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t uplo_len);

#endif
