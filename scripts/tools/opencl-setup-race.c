// Why OpenCLRuntime.setupLock exists: N threads make their first OpenCL calls at once (platform,
// device, context, queue, then a program build), as parallel tests do in a fresh process.
//   gcc -O1 scripts/tools/opencl-setup-race.c -lOpenCL -lpthread -o /tmp/race
//   for i in $(seq 150); do /tmp/race 8 || echo crash; done      # PoCL 3.1 here: 4 of 150 segfault
//   for i in $(seq 300); do /tmp/race 8 s || echo crash; done    # setup under one lock: 0 of 300
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int serialize;
static pthread_barrier_t barrier;
static void *work(void *arg) {
  (void)arg;
  pthread_barrier_wait(&barrier);
  if (serialize) pthread_mutex_lock(&lock);
  cl_platform_id p; cl_device_id d; cl_int err; cl_uint n = 0;
  clGetPlatformIDs(1, &p, &n);
  clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL);
  cl_context c = clCreateContext(NULL, 1, &d, NULL, NULL, &err);
  cl_command_queue q = clCreateCommandQueue(c, d, 0, &err);
  if (serialize) pthread_mutex_unlock(&lock);
  const char *src = "kernel void k(global float *x) { x[get_global_id(0)] *= 2.0f; }";
  cl_program prog = clCreateProgramWithSource(c, 1, &src, NULL, &err);
  err = clBuildProgram(prog, 1, &d, "", NULL, NULL);
  clReleaseProgram(prog); clReleaseCommandQueue(q); clReleaseContext(c);
  return NULL;
}
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 8; serialize = argc > 2;
  pthread_barrier_init(&barrier, NULL, n);
  pthread_t t[64];
  for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, work, NULL);
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  return 0;
}
