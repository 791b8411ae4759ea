import CJPEG
import Foundation

/// JPEG reading through libjpeg(-turbo) (the `CJPEG` C target holds libjpeg's setjmp/longjmp).
///
/// Baseline, progressive and arithmetic-coded files; grey, YCbCr, RGB, CMYK and YCCK (CMYK is taken as
/// stored inverted, Photoshop's convention, with or without an Adobe marker, as Pillow does) all decode
/// to 8-bit RGB. The EXIF orientation (APP1 tag 0x0112) is applied, so the
/// image is upright as a photo viewer shows it. The size is checked against `PNGFile.maxSide` and
/// `PNGFile.maxPixels` from the header, before anything image-sized is allocated.
public enum JPEGFile {
    /// Progressive files with more scans than this are refused: each scan is a full pass over the
    /// coefficients, so a small hostile file could otherwise take minutes (libjpeg-turbo's own tools use 500).
    public static let maxScans = 500

    /// The header of a JPEG: stored size, components, progressive, EXIF orientation.
    public struct Info: Sendable, Equatable {
        public var width: Int
        public var height: Int
        public var components: Int
        public var progressive: Bool
        /// EXIF orientation 1–8 (1 = as stored).
        public var orientation: Int
    }

    /// Reads the header of the JPEG bytes `data` (nothing image-sized is allocated); `name` names the file in messages.
    public static func info(data: Data, name: String) throws -> Info {
        var info = amgpu_jpeg_info()
        var message = [CChar](repeating: 0, count: 256)
        var code: Int32 = -1
        let status = data.withUnsafeBytes { raw in
            amgpu_jpeg_read_info(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, &info, &message, message.count, &code)
        }
        guard status == 0 else { throw failure("cannot read image", name: name, message: message, code: code) }
        return Info(width: Int(info.width), height: Int(info.height), components: Int(info.components),
                    progressive: info.progressive != 0, orientation: Int(info.orientation))
    }

    /// Decodes the JPEG bytes `data` to upright 8-bit RGB (EXIF orientation applied).
    public static func read(data: Data, name: String) throws -> RGBImage {
        let header = try info(data: data, name: name)
        try checkSize(width: header.width, height: header.height, name: name)
        var pixels = [UInt8](repeating: 0, count: header.width * header.height * 3)
        var message = [CChar](repeating: 0, count: 256)
        var code: Int32 = -1
        let status = data.withUnsafeBytes { raw in
            pixels.withUnsafeMutableBytes { out in
                amgpu_jpeg_decode_rgb(raw.bindMemory(to: UInt8.self).baseAddress, raw.count,
                                      out.bindMemory(to: UInt8.self).baseAddress, out.count, Int32(maxScans), &message, message.count, &code)
            }
        }
        guard status == 0 else { throw failure("cannot decode image", name: name, message: message, code: code) }
        return RGBImage(width: header.width, height: header.height, pixels: pixels).applyingEXIFOrientation(header.orientation)
    }

    /// The EXIF orientation in an APP1 payload starting with "Exif\0\0" (1 when absent or invalid).
    public static func exifOrientation(_ app1: [UInt8]) -> Int {
        app1.withUnsafeBufferPointer { Int(amgpu_exif_orientation($0.baseAddress, $0.count)) }
    }

    /// Refuses images outside 1…`PNGFile.maxSide` per side or over `PNGFile.maxPixels`, naming the size and the limit.
    static func checkSize(width: Int, height: Int, name: String) throws {
        guard width > 0, height > 0, width <= PNGFile.maxSide, height <= PNGFile.maxSide, width * height <= PNGFile.maxPixels else {
            throw EngineError.invalidInput("image '\(name)' is \(width)×\(height) pixels; amgpu accepts 1 to \(PNGFile.maxSide) pixels per side and at most \(PNGFile.maxPixels / 1_000_000) megapixels: downscale it first (e.g. `convert big.jpg -resize 2048x2048 small.jpg`)")
        }
    }

    /// The error for a failed libjpeg call: an unsupported variant (12-bit, arithmetic coding where not
    /// compiled in, an unimplemented colour conversion) says so; anything else is damage.
    static func failure(_ what: String, name: String, message: [CChar], code: Int32) -> EngineError {
        if code >= 0 && amgpu_jpeg_unsupported(code) != 0 {
            return .unsupported("\(what) '\(name)': unsupported JPEG variant (\(text(message))): convert it to an 8-bit baseline JPEG or PNG")
        }
        return .io("\(what) '\(name)': \(text(message)); the JPEG file is corrupt or truncated: re-export it")
    }

    static func text(_ message: [CChar]) -> String {
        let bytes = message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        let s = String(decoding: bytes, as: UTF8.self)
        return s.isEmpty ? "unknown libjpeg error" : s
    }
}

extension RGBImage {
    /// The image turned upright for EXIF orientation `orientation` (1–8; anything else is 1):
    /// 2 mirror left–right, 3 rotate 180°, 4 mirror top–bottom, 5 transpose, 6 rotate 90° clockwise,
    /// 7 transverse, 8 rotate 90° counter-clockwise. 5–8 swap width and height.
    /// Output pixel (x, y) of the W′×H′ result reads stored pixel:
    /// 2 (W−1−x, y), 3 (W−1−x, H−1−y), 4 (x, H−1−y), 5 (y, x), 6 (y, H−1−x), 7 (W−1−y, H−1−x), 8 (W−1−y, x).
    public func applyingEXIFOrientation(_ orientation: Int) -> RGBImage {
        guard (2...8).contains(orientation) else { return self }
        let w = width, h = height
        let swaps = orientation >= 5
        let ow = swaps ? h : w, oh = swaps ? w : h
        var out = [UInt8](repeating: 0, count: pixels.count)
        for y in 0..<oh {
            for x in 0..<ow {
                let (sx, sy): (Int, Int)
                switch orientation {
                case 2: (sx, sy) = (w - 1 - x, y)
                case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                case 4: (sx, sy) = (x, h - 1 - y)
                case 5: (sx, sy) = (y, x)
                case 6: (sx, sy) = (y, h - 1 - x)
                case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                default: (sx, sy) = (w - 1 - y, x)
                }
                let s = (sy * w + sx) * 3, d = (y * ow + x) * 3
                out[d] = pixels[s]; out[d + 1] = pixels[s + 1]; out[d + 2] = pixels[s + 2]
            }
        }
        return RGBImage(width: ow, height: oh, pixels: out)
    }
}
