#ifndef AMGPU_JPEG_H
#define AMGPU_JPEG_H
// A small C layer over libjpeg(-turbo) for amgpu. libjpeg reports errors by calling a handler that
// must not return (it longjmps), which Swift cannot do: these functions set up the setjmp and
// return 0 on success or -1 with a message (NUL-terminated, at most message_size bytes) and, in
// *code (when not NULL), libjpeg's msg_code (J_MESSAGE_CODE; -1 for amgpu's own errors) instead.
// Warnings that mean corrupt or truncated data ("Premature end of JPEG file", "Corrupt JPEG data: ...")
// are treated as errors, except extraneous bytes before the EOI marker (junk after the last scan).
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// What the header says, before any pixel is decoded.
typedef struct {
    int width;          ///< as stored (before EXIF orientation)
    int height;
    int components;     ///< 1 (grey), 3 (YCbCr/RGB) or 4 (CMYK/YCCK)
    int progressive;    ///< 1 for a progressive JPEG
    int adobe_inverted; ///< 1 for CMYK/YCCK with an Adobe marker (the decoder takes all CMYK as inverted, see below)
    int orientation;    ///< EXIF orientation 1–8 (APP1 tag 0x0112); 1 when absent or invalid
} amgpu_jpeg_info;

/// Reads the header of the JPEG `data[0..<size]` (no pixel data is decoded, nothing large is allocated).
int amgpu_jpeg_read_info(const unsigned char *data, size_t size, amgpu_jpeg_info *info,
                         char *message, size_t message_size, int *code);

/// Decodes the JPEG to 8-bit RGB, row-major, 3 bytes per pixel, into `rgb`, which must hold exactly
/// width × height × 3 bytes of the stored (un-rotated) image. Grey is replicated; CMYK/YCCK becomes
/// R = (255 − C)(255 − K)/255 (and likewise G from M, B from Y), rounded, after undoing the inversion
/// with which CMYK is stored (Photoshop's convention; assumed with or without an Adobe marker, as Pillow does).
/// Progressive files with more than `max_scans` scans are refused (a hostile file can make each scan cost a full pass).
int amgpu_jpeg_decode_rgb(const unsigned char *data, size_t size, unsigned char *rgb, size_t rgb_size,
                          int max_scans, char *message, size_t message_size, int *code);

/// 1 when the libjpeg msg_code `code` means a JPEG variant this libjpeg cannot decode (12-bit precision,
/// an unimplemented colour conversion, a feature not compiled in, arithmetic coding) rather than damage.
int amgpu_jpeg_unsupported(int code);

/// The EXIF orientation (1–8) in the APP1 payload `exif[0..<size]` (starting at "Exif\0\0"); 1 when
/// absent or invalid. Both byte orders. Exposed for tests.
int amgpu_exif_orientation(const unsigned char *exif, size_t size);

#ifdef __cplusplus
}
#endif
#endif
