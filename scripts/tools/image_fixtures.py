#!/usr/bin/env python3
"""Writes the image-reader fixtures in Tests/GPUEngineTests/Fixtures/images (committed; a few KB each).

Run with the project venv:  ~/.cache/amgpu/venv/bin/python scripts/tools/image_fixtures.py
Each JPEG NAME.jpg has NAME.ref.png beside it: Pillow's own decode of it (through Pillow's bundled
libjpeg-turbo), turned upright with ImageOps.exif_transpose and converted to RGB, which
Tests/GPUEngineTests/ImageReadingTests.swift compares amgpu's decode with.

Good JPEGs (48x32 unless said): baseline 4:2:0 and 4:4:4, progressive, greyscale, CMYK from explicit
ink values with a K gradient (Adobe marker, inverted as Photoshop writes it) and the same file without
its Adobe APP14 segment, the baseline with 5 junk bytes before EOI, EXIF orientation 1-8 (odd values little-endian "II",
even values big-endian "MM" TIFF headers, same pixel data as baseline 4:2:0).
Bad JPEGs: truncated (cut at 60 %), progressive with a corrupt scan header (the second SOS's
spectral selection set to Ss=63 Se=1), and huge (the baseline's SOF patched to 60000x60000).
PNGs with alpha: 4x2 RGBA (8- and 16-bit) and grey+alpha with alpha 0, 64, 128, 255 in each row.
PNGs without alpha: 4x2 grey (8- and 16-bit, v and v*257) and palette, values in GRAY / PALETTE below
(the test repeats them).
"""
import io
import os
import struct
import zlib
from PIL import Image, ImageOps

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "GPUEngineTests", "Fixtures", "images")


def scene(w=48, h=32):
    """An asymmetric colour scene: gradients, a red block top-left, a blue bar bottom-right."""
    im = Image.new("RGB", (w, h))
    px = im.load()
    for y in range(h):
        for x in range(w):
            r = int(255 * x / (w - 1))
            g = int(255 * y / (h - 1))
            b = (x * 7 + y * 13) % 256
            if x < 10 and y < 8:
                r, g, b = 230, 30, 40
            if x > w - 14 and y > h - 6:
                r, g, b = 20, 40, 220
            px[x, y] = (r, g, b)
    return im


def exif_orientation(value, big_endian):
    """An APP1 EXIF payload with one IFD0 entry, Orientation (0x0112, SHORT, 1 value)."""
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    tiff += struct.pack(e + "H", 1)
    tiff += struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", value, 0)
    tiff += struct.pack(e + "I", 0)
    return b"Exif\x00\x00" + tiff


def save_jpeg(name, im, **kw):
    buf = io.BytesIO()
    im.save(buf, "JPEG", **kw)
    data = buf.getvalue()
    write_jpeg(name, data)
    return data


def write_jpeg(name, data):
    """Writes JPEG bytes `data` as NAME.jpg and Pillow's upright RGB decode of them as NAME.ref.png."""
    with open(os.path.join(OUT, name + ".jpg"), "wb") as f:
        f.write(data)
    ref = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    ref.save(os.path.join(OUT, name + ".ref.png"))


def cmyk_scene(w=48, h=32):
    """CMYK ink values (0 = no ink): C ramps down x, M down y, Y a diagonal pattern, K ramps 0..255 across x."""
    data = bytearray()
    for y in range(h):
        for x in range(w):
            data += bytes((255 * y // (h - 1), 200 - 200 * x // (w - 1), (x * 11 + y * 5) % 256, 255 * x // (w - 1)))
    return Image.frombytes("CMYK", (w, h), bytes(data))


def markers(data):
    """(offset, marker) of each segment before the first SOS, then every SOS (scans are scanned for)."""
    out, i = [], 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        m = data[i + 1]
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7 or m == 0xFF or m == 0x00:
            i += 1 if m == 0xFF else 2
            continue
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        out.append((i, m))
        if m == 0xD9:
            break
        i += 2 + length
        if m == 0xDA:  # skip entropy-coded data up to the next marker
            while i + 1 < len(data) and not (data[i] == 0xFF and data[i + 1] not in (0x00,) and not 0xD0 <= data[i + 1] <= 0xD7):
                i += 1
    return out


def write_png(path, width, height, bit_depth, color_type, raw):
    """A PNG from filtered scanlines `raw` (filter byte 0 + samples per row), no ancillary chunks."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    os.makedirs(OUT, exist_ok=True)
    im = scene()
    base = save_jpeg("baseline_420", im, quality=90, subsampling=2)
    save_jpeg("baseline_444", im, quality=90, subsampling=0)
    prog = save_jpeg("progressive", im, quality=90, progressive=True)
    save_jpeg("gray", im.convert("L"), quality=90)
    # CMYK from explicit ink values with K ramping 0 -> 255 across x (Pillow's RGB->CMYK would set K = 0);
    # Pillow writes it inverted with an Adobe APP14 marker. cmyk_no_adobe is the same file without APP14.
    cmyk = save_jpeg("cmyk", cmyk_scene(), quality=90)
    adobe = [off for off, m in markers(cmyk) if m == 0xEE]
    assert len(adobe) == 1, "Pillow wrote no Adobe APP14 segment"
    off = adobe[0]
    seg = 2 + struct.unpack(">H", cmyk[off + 2:off + 4])[0]
    write_jpeg("cmyk_no_adobe", cmyk[:off] + cmyk[off + seg:])
    # Junk after the last scan, before EOI: libjpeg warns "Corrupt JPEG data: 4 extraneous bytes before
    # marker 0xd9" (Debian's libjpeg-turbo 2.1.5 counts 4 of the 5 bytes); Pillow and browsers open it.
    assert base[-2:] == b"\xff\xd9"
    write_jpeg("junk_before_eoi", base[:-2] + b"junk!" + base[-2:])
    for o in range(1, 9):
        save_jpeg("exif_%d" % o, im, quality=90, subsampling=2, exif=exif_orientation(o, big_endian=(o % 2 == 0)))

    with open(os.path.join(OUT, "bad_truncated.jpg"), "wb") as f:
        f.write(base[: int(len(base) * 0.6)])
    sos = [off for off, m in markers(prog) if m == 0xDA]
    assert len(sos) >= 2, "progressive file has fewer than two scans"
    corrupt = bytearray(prog)
    off = sos[1]
    ns = corrupt[off + 4]
    p = off + 5 + 2 * ns          # Ss, Se, AhAl follow the component list
    corrupt[p], corrupt[p + 1] = 63, 1
    with open(os.path.join(OUT, "bad_progressive_scan.jpg"), "wb") as f:
        f.write(bytes(corrupt))
    sof = [off for off, m in markers(base) if m in (0xC0, 0xC1, 0xC2)][0]
    huge = bytearray(base)
    huge[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)   # height, width
    with open(os.path.join(OUT, "bad_huge.jpg"), "wb") as f:
        f.write(bytes(huge))

    alphas = [0, 64, 128, 255]
    colors = [(200, 30, 90), (10, 220, 140)]
    rgba = Image.new("RGBA", (4, 2))
    for y in range(2):
        for x in range(4):
            rgba.putpixel((x, y), colors[y] + (alphas[x],))
    rgba.save(os.path.join(OUT, "rgba.png"))
    la = Image.new("LA", (4, 2))
    for y in range(2):
        for x in range(4):
            la.putpixel((x, y), ((90, 200)[y], alphas[x]))
    la.save(os.path.join(OUT, "gray_alpha.png"))
    # 16-bit RGBA (Pillow cannot write it; a minimal encoder): each 8-bit value v becomes v * 257.
    rows = [b"\x00" + b"".join(struct.pack(">4H", *[v * 257 for v in colors[y] + (alphas[x],)]) for x in range(4)) for y in range(2)]
    write_png(os.path.join(OUT, "rgba16.png"), 4, 2, bit_depth=16, color_type=6, raw=b"".join(rows))
    gray = [[0, 50, 128, 255], [17, 99, 200, 240]]
    Image.frombytes("L", (4, 2), bytes(v for row in gray for v in row)).save(os.path.join(OUT, "gray.png"))
    raw16 = b"".join(struct.pack(">H", v * 257) for row in gray for v in row)
    Image.frombytes("I;16", (4, 2), raw16, "raw", "I;16B").save(os.path.join(OUT, "gray16.png"))
    palette = [(255, 0, 0), (0, 128, 255), (10, 20, 30), (250, 250, 5)]
    pal = Image.frombytes("P", (4, 2), bytes([0, 1, 2, 3, 3, 2, 1, 0]))
    pal.putpalette([c for rgb in palette for c in rgb])
    pal.save(os.path.join(OUT, "palette.png"))
    for name in sorted(os.listdir(OUT)):
        print("%-28s %6d bytes" % (name, os.path.getsize(os.path.join(OUT, name))))


if __name__ == "__main__":
    main()
