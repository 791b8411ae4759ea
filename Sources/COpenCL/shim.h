#ifndef AMGPU_COPENCL_SHIM_H
#define AMGPU_COPENCL_SHIM_H
// Pin the OpenCL 1.2 API: every vendor's driver has it, and no deprecation warnings appear.
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
// cl_ext.h defines CL_PLATFORM_NOT_FOUND_KHR (-1001), what the ICD loader returns with no driver.
#include <CL/cl_ext.h>
#endif
