// Why scripts/sanitize runs AddressSanitizer with use_sigaltstack=0.
//   clang -fsanitize=address scripts/sanitizers/altstack-repro.c -lOpenCL -lpthread -o /tmp/repro
//   /tmp/repro                                   -> "AddressSanitizer failed to deallocate 0x134c0 (79040) bytes … (error code: 22)"
//   ASAN_OPTIONS=use_sigaltstack=0 /tmp/repro    -> "thread joined"
// Builds an OpenCL program on a thread that then exits. PoCL compiles with in-process LLVM/clang,
// which installs a malloc'd alternate signal stack on the compiling thread; ASan's thread teardown
// then munmaps that stack (EINVAL) unless ASAN_OPTIONS=use_sigaltstack=0.
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
static void *work(void *arg) {
  (void)arg;
  cl_platform_id p; cl_device_id d; cl_int err;
  clGetPlatformIDs(1, &p, NULL);
  clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL);
  cl_context c = clCreateContext(NULL, 1, &d, NULL, NULL, &err);
  const char *src = "kernel void k(global float *x) { x[get_global_id(0)] *= 2.0f; }";
  cl_program prog = clCreateProgramWithSource(c, 1, &src, NULL, &err);
  err = clBuildProgram(prog, 1, &d, "", NULL, NULL);
  stack_t ss; sigaltstack(NULL, &ss);
  fprintf(stderr, "build %d; this thread's altstack after the build: %p, %zu bytes\n", err, ss.ss_sp, ss.ss_size);
  clReleaseProgram(prog); clReleaseContext(c);
  return NULL;
}
int main(void) {
  pthread_t t; pthread_create(&t, NULL, work, NULL); pthread_join(t, NULL);
  fprintf(stderr, "thread joined\n");
  return 0;
}
