#ifndef AMGPU_CPNG_SHIM_H
#define AMGPU_CPNG_SHIM_H
#include <png.h>
// Composite format macros are not imported into Swift; re-export the ones amgpu uses.
static const png_uint_32 AMGPU_PNG_FORMAT_RGB = PNG_FORMAT_RGB;
static const png_uint_32 AMGPU_PNG_FORMAT_RGBA = PNG_FORMAT_RGBA;
static const png_uint_32 AMGPU_PNG_FORMAT_GRAY = PNG_FORMAT_GRAY;
static const png_uint_32 AMGPU_PNG_IMAGE_VERSION = PNG_IMAGE_VERSION;
static inline size_t amgpu_png_image_size(png_imagep image) { return PNG_IMAGE_SIZE(*image); }
static inline int amgpu_png_failed(png_imagep image) { return PNG_IMAGE_FAILED(*image); }
#endif
