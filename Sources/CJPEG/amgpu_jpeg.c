// libjpeg(-turbo) behind a setjmp, for amgpu (see include/amgpu_jpeg.h).
#include "amgpu_jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char *message;
    size_t message_size;
    int max_scans;
    int *code;   ///< receives libjpeg's msg_code on an error (-1 for amgpu's own errors)
} amgpu_error_mgr;

static void amgpu_set_message(char *message, size_t size, const char *text) {
    if (message == NULL || size == 0) return;
    snprintf(message, size, "%s", text);
}

/// Fatal errors: keep libjpeg's text and jump back to the caller's setjmp.
static void amgpu_error_exit(j_common_ptr cinfo) {
    amgpu_error_mgr *err = (amgpu_error_mgr *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    amgpu_set_message(err->message, err->message_size, text);
    if (err->code != NULL) *err->code = cinfo->err->msg_code;
    longjmp(err->jump, 1);
}

/// Warnings (level −1) that mean corrupt or truncated data are errors (JWRN_JPEG_EOF, JWRN_HIT_MARKER,
/// JWRN_MUST_RESYNC, the Huffman warnings, …); trace messages (level ≥ 0) and the harmless warnings are
/// dropped. Nothing is printed.
static void amgpu_emit_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    switch (cinfo->err->msg_code) {
    case JWRN_ADOBE_XFORM:  // unknown Adobe transform code: libjpeg falls back to the colour-space default
    case JWRN_JFIF_MAJOR:   // unknown JFIF version: the data is still baseline/progressive JPEG
    case JWRN_BOGUS_ICC:    // amgpu ignores ICC profiles
        return;
    case JWRN_EXTRANEOUS_DATA:
        // "Corrupt JPEG data: N extraneous bytes before marker 0xd9": junk after the last scan, before
        // EOI (camera and ImageNet files have it; Pillow and browsers open them). Every pixel is decoded
        // by then. Junk before any other marker is still an error.
        if (cinfo->err->msg_parm.i[1] == 0xD9) return;
        amgpu_error_exit(cinfo);
        break;
    default:
        amgpu_error_exit(cinfo);
    }
}

int amgpu_jpeg_unsupported(int code) {
    switch (code) {
    case JERR_BAD_PRECISION:
    case JERR_CONVERSION_NOTIMPL:
    case JERR_NOT_COMPILED:
    case JERR_ARITH_NOTIMPL:
        return 1;
    default:
        return 0;
    }
}

/// Refuses progressive files with too many scans (each scan re-reads the coefficient buffers).
static void amgpu_progress(j_common_ptr cinfo) {
    amgpu_error_mgr *err = (amgpu_error_mgr *)cinfo->err;
    if (cinfo->is_decompressor) {
        j_decompress_ptr d = (j_decompress_ptr)cinfo;
        if (err->max_scans > 0 && d->input_scan_number > err->max_scans) {
            char text[160];
            snprintf(text, sizeof text, "the progressive JPEG has more than %d scans (a corrupt or hostile file)", err->max_scans);
            amgpu_set_message(err->message, err->message_size, text);
            longjmp(err->jump, 1);
        }
    }
}

static unsigned read16(const unsigned char *p, int little) {
    return little ? (unsigned)p[0] | ((unsigned)p[1] << 8) : ((unsigned)p[0] << 8) | (unsigned)p[1];
}

static unsigned long read32(const unsigned char *p, int little) {
    return little ? (unsigned long)p[0] | ((unsigned long)p[1] << 8) | ((unsigned long)p[2] << 16) | ((unsigned long)p[3] << 24)
                  : ((unsigned long)p[0] << 24) | ((unsigned long)p[1] << 16) | ((unsigned long)p[2] << 8) | (unsigned long)p[3];
}

int amgpu_exif_orientation(const unsigned char *exif, size_t size) {
    static const unsigned char tag[6] = {'E', 'x', 'i', 'f', 0, 0};
    if (exif == NULL || size < 6 + 8 || memcmp(exif, tag, 6) != 0) return 1;
    const unsigned char *tiff = exif + 6;
    size_t n = size - 6;
    int little;
    if (tiff[0] == 'I' && tiff[1] == 'I') little = 1;
    else if (tiff[0] == 'M' && tiff[1] == 'M') little = 0;
    else return 1;
    if (read16(tiff + 2, little) != 42) return 1;
    unsigned long ifd = read32(tiff + 4, little);
    if (ifd > n || n - ifd < 2) return 1;
    unsigned count = read16(tiff + ifd, little);
    size_t entries = (size_t)ifd + 2;
    for (unsigned i = 0; i < count; i++) {
        size_t at = entries + (size_t)i * 12;
        if (at > n || n - at < 12) return 1;
        if (read16(tiff + at, little) != 0x0112) continue;
        unsigned type = read16(tiff + at + 2, little);
        unsigned long values = read32(tiff + at + 4, little);
        if (type != 3 || values < 1) return 1;   // SHORT, stored in the first two bytes of the value field
        unsigned value = read16(tiff + at + 8, little);
        return value >= 1 && value <= 8 ? (int)value : 1;
    }
    return 1;
}

/// Shared set-up: error manager, memory source, EXIF marker saving, header. The caller owns the setjmp.
static void amgpu_begin(struct jpeg_decompress_struct *cinfo, amgpu_error_mgr *err, const unsigned char *data, size_t size) {
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
    (void)err;
    jpeg_read_header(cinfo, TRUE);
}

static void amgpu_init_error(amgpu_error_mgr *err, char *message, size_t message_size, int max_scans, int *code) {
    jpeg_std_error(&err->base);
    err->base.error_exit = amgpu_error_exit;
    err->base.emit_message = amgpu_emit_message;
    err->message = message;
    err->message_size = message_size;
    err->max_scans = max_scans;
    err->code = code;
    if (code != NULL) *code = -1;
    amgpu_set_message(message, message_size, "");
}

int amgpu_jpeg_read_info(const unsigned char *data, size_t size, amgpu_jpeg_info *info,
                         char *message, size_t message_size, int *code) {
    struct jpeg_decompress_struct cinfo;
    amgpu_error_mgr err;
    memset(&cinfo, 0, sizeof cinfo);
    amgpu_init_error(&err, message, message_size, 0, code);
    cinfo.err = &err.base;
    if (data == NULL || size == 0) {
        amgpu_set_message(message, message_size, "the file is empty");
        return -1;
    }
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    amgpu_begin(&cinfo, &err, data, size);
    info->width = (int)cinfo.image_width;
    info->height = (int)cinfo.image_height;
    info->components = cinfo.num_components;
    info->progressive = jpeg_has_multiple_scans(&cinfo) ? 1 : 0;
    info->adobe_inverted = ((cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) && cinfo.saw_Adobe_marker) ? 1 : 0;
    info->orientation = 1;
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m != NULL; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            info->orientation = amgpu_exif_orientation(m->data, m->data_length);
            break;
        }
    }
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

static unsigned char mul255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (unsigned char)((t + (t >> 8)) >> 8);   // round(a·b / 255), exact for a, b in 0…255
}

int amgpu_jpeg_decode_rgb(const unsigned char *data, size_t size, unsigned char *rgb, size_t rgb_size,
                          int max_scans, char *message, size_t message_size, int *code) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    amgpu_error_mgr err;
    memset(&cinfo, 0, sizeof cinfo);
    amgpu_init_error(&err, message, message_size, max_scans, code);
    cinfo.err = &err.base;
    if (data == NULL || size == 0) {
        amgpu_set_message(message, message_size, "the file is empty");
        return -1;
    }
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    amgpu_begin(&cinfo, &err, data, size);
    progress.progress_monitor = amgpu_progress;
    cinfo.progress = &progress;
    size_t width = cinfo.image_width, height = cinfo.image_height;
    if (rgb == NULL || rgb_size != width * height * 3) {
        amgpu_set_message(message, message_size, "internal error: the output buffer does not match the image size");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    // CMYK is always taken as stored inverted (Photoshop's convention, which libjpeg and Pillow write),
    // also without an Adobe APP14 marker: Pillow and Firefox assume the same, and a CMYK JPEG stored
    // the other way round is very rare.
    int inverted = cmyk;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_width != width || cinfo.output_height != height || cinfo.output_components != (cmyk ? 4 : 3)) {
        amgpu_set_message(message, message_size, "internal error: libjpeg's output does not match the header");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    // A CMYK row goes through a buffer from libjpeg's pool (freed by jpeg_destroy, also after a longjmp).
    JSAMPARRAY cmyk_row = cmyk ? (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE, (JDIMENSION)(width * 4), 1) : NULL;
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        unsigned char *out = rgb + y * width * 3;
        if (!cmyk) {
            JSAMPROW row = out;
            jpeg_read_scanlines(&cinfo, &row, 1);
            continue;
        }
        jpeg_read_scanlines(&cinfo, cmyk_row, 1);
        const unsigned char *in = cmyk_row[0];
        for (size_t x = 0; x < width; x++) {
            unsigned c = in[4 * x], m = in[4 * x + 1], ye = in[4 * x + 2], k = in[4 * x + 3];
            if (!inverted) { c = 255 - c; m = 255 - m; ye = 255 - ye; k = 255 - k; }
            // Now c, m, ye, k hold 255 − ink: R = (255 − C)(255 − K)/255.
            out[3 * x] = mul255(c, k);
            out[3 * x + 1] = mul255(m, k);
            out[3 * x + 2] = mul255(ye, k);
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}
