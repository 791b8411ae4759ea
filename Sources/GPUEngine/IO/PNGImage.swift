import CPNG
import Foundation

/// An 8-bit RGB image in host memory, row-major, 3 bytes per pixel.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The image as a [1, 3, height, width] tensor of values in [0, 1] (NCHW).
    public func tensor() -> HostTensor {
        let plane = width * height
        var values = [Float](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            for c in 0..<3 { values[c * plane + i] = Float(pixels[i * 3 + c]) / 255 }
        }
        return HostTensor(shape: [1, 3, height, width], values: values)
    }

    /// Quantises image `index` of a [N, 3, H, W] tensor in [0, 1] to 8 bits (values are clamped;
    /// NaN becomes 0).
    public init(tensor: HostTensor, index: Int = 0) throws {
        guard tensor.shape.count == 4, tensor.shape[1] == 3, index < tensor.shape[0] else {
            throw EngineError.shapeMismatch("an RGB image needs a [N, 3, H, W] tensor, got \(tensor.shape)")
        }
        height = tensor.shape[2]
        width = tensor.shape[3]
        let plane = width * height
        let base = index * 3 * plane
        pixels = [UInt8](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            for c in 0..<3 {
                let v = tensor.values[base + c * plane + i]
                let q = v.isNaN ? 0 : (min(max(v, 0), 1) * 255).rounded()
                pixels[i * 3 + c] = UInt8(q)
            }
        }
    }
}

/// PNG reading and writing through libpng's simplified API.
public enum PNGFile {
    /// The largest image amgpu accepts (per side), so a hostile header cannot request terabytes.
    public static let maxSide = 16_384
    /// The largest image amgpu accepts in pixels (8192 × 8192): its fp32 tensor alone takes 768 MiB.
    public static let maxPixels = 8_192 * 8_192

    /// Reads any PNG (gray, RGB, RGBA, palette, 16-bit) as 8-bit RGB; alpha is composited over
    /// `background` (see `composite(rgba:over:)`). Input images are read through `ImageFile.read`,
    /// which also takes JPEG; this reads amgpu's own PNG outputs.
    public static func read(_ path: String, background: BackgroundColor = .white) throws -> RGBImage {
        guard FileManager.default.fileExists(atPath: path) else {
            throw EngineError.io("cannot read image '\(path)': no such file; check the path")
        }
        return try read(data: ImageFile.fileBytes(path), name: path, background: background)
    }

    /// Decodes the PNG bytes `data` as 8-bit RGB, alpha over `background`; `name` only names the image in messages.
    /// (`read(_:)` and `ImageFile.read` call this; the fuzz target calls it directly.)
    public static func read(data: Data, name path: String, background: BackgroundColor = .white) throws -> RGBImage {
        // libpng keeps the pointer from begin_read until finish_read, so both run inside one closure.
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> RGBImage in
            var image = png_image()
            image.version = png_uint_32(AMGPU_PNG_IMAGE_VERSION)
            guard let base = raw.baseAddress, raw.count > 0, png_image_begin_read_from_memory(&image, base, raw.count) != 0 else {
                let message = raw.count == 0 ? "the file is empty" : libpngMessage(&image)
                png_image_free(&image)
                throw EngineError.io("cannot read image '\(path)': \(message) (amgpu reads \(ImageFile.formats) files; convert other formats first, e.g. `convert photo.webp photo.png`)")
            }
            guard image.width > 0, image.height > 0, Int(image.width) <= maxSide, Int(image.height) <= maxSide,
                  Int(image.width) * Int(image.height) <= maxPixels else {
                let size = "\(image.width)×\(image.height)"
                png_image_free(&image)
                throw EngineError.invalidInput("image '\(path)' is \(size) pixels; amgpu accepts 1 to \(maxSide) pixels per side and at most \(maxPixels / 1_000_000) megapixels: downscale it first (e.g. `convert big.png -resize 2048x2048 small.png`)")
            }
            // 16-bit samples without gAMA/sRGB are sRGB-encoded, as in every viewer (libpng would otherwise
            // take them as linear and brighten them): 16-bit v reads as 8-bit round(v / 257).
            image.flags |= png_uint_32(PNG_IMAGE_FLAG_16BIT_sRGB)
            let hasAlpha = image.format & png_uint_32(PNG_FORMAT_FLAG_ALPHA) != 0
            let channels = hasAlpha ? 4 : 3
            image.format = png_uint_32(hasAlpha ? AMGPU_PNG_FORMAT_RGBA : AMGPU_PNG_FORMAT_RGB)
            let width = Int(image.width), height = Int(image.height)
            var decoded = [UInt8](repeating: 0, count: width * height * channels)
            let ok = decoded.withUnsafeMutableBytes { out in
                png_image_finish_read(&image, nil, out.baseAddress, png_int_32(width * channels), nil)
            }
            if ok == 0 {
                let message = libpngMessage(&image)
                png_image_free(&image)
                throw EngineError.io("cannot decode image '\(path)': \(message); the file is truncated or corrupt: re-export it as PNG")
            }
            guard hasAlpha else { return RGBImage(width: width, height: height, pixels: decoded) }
            return RGBImage(width: width, height: height, pixels: composite(rgba: decoded, over: background))
        }
    }

    /// RGBA (8-bit, straight alpha) over an opaque background, in the sRGB-encoded values as browsers and
    /// Pillow do: out = round((c·α + bg·(255 − α)) / 255) per channel. α = 0 gives the background, α = 255 the colour.
    static func composite(rgba: [UInt8], over background: BackgroundColor) -> [UInt8] {
        let bg = [UInt32(background.red), UInt32(background.green), UInt32(background.blue)]
        let count = rgba.count / 4
        var out = [UInt8](repeating: 0, count: count * 3)
        for i in 0..<count {
            let a = UInt32(rgba[i * 4 + 3])
            for c in 0..<3 {
                out[i * 3 + c] = UInt8((UInt32(rgba[i * 4 + c]) * a + bg[c] * (255 - a) + 127) / 255)
            }
        }
        return out
    }

    /// Writes `image` as an 8-bit RGB PNG, atomically: to a temporary file in the same folder,
    /// then renamed over `path`, so a reader never sees a half-written file.
    public static func write(_ image: RGBImage, to path: String) throws {
        guard image.pixels.count == image.width * image.height * 3, image.width > 0, image.height > 0 else {
            throw EngineError.invalidInput("cannot write an empty or inconsistent image to '\(path)'")
        }
        let url = URL(fileURLWithPath: path)
        let temporary = temporaryURL(for: url)
        var png = png_image()
        png.version = png_uint_32(AMGPU_PNG_IMAGE_VERSION)
        png.width = png_uint_32(image.width)
        png.height = png_uint_32(image.height)
        png.format = png_uint_32(AMGPU_PNG_FORMAT_RGB)
        let ok = image.pixels.withUnsafeBytes { raw in
            png_image_write_to_file(&png, temporary.path, 0, raw.baseAddress, png_int_32(image.width * 3), nil)
        }
        if ok == 0 {
            let message = libpngMessage(&png)
            png_image_free(&png)
            try? FileManager.default.removeItem(at: temporary)
            throw EngineError.io("cannot write '\(path)': \(message) (check that the folder exists, is writable and the disk is not full)")
        }
        png_image_free(&png)
        try moveAtomically(temporary, to: url)
    }

    static func libpngMessage(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            let text = String(decoding: bytes, as: UTF8.self)
            return text.isEmpty ? "unknown libpng error" : text
        }
    }
}

/// The temporary file an atomic write goes through: `.NAME.tmp-PID-RANDOM-HOST` in the destination's folder
/// (hidden, and naming its writer so that a later run can tell a dead process's leftover from a live one's).
public func temporaryURL(for url: URL) -> URL {
    url.deletingLastPathComponent()
        .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(currentHostName())")
}

/// The short host name (up to the first dot), "localhost" when it cannot be read.
public func currentHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return name.split(separator: ".").first.map(String.init) ?? "localhost"
}

/// Renames `temporary` over `destination` (atomic within one file system); removes the temporary on failure.
public func moveAtomically(_ temporary: URL, to destination: URL) throws {
    if rename(temporary.path, destination.path) != 0 {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: temporary)
        throw EngineError.io("cannot write '\(destination.path)': \(reason)")
    }
}

/// Writes `data` to `path` atomically (temporary file in the same folder, then rename).
public func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let temporary = temporaryURL(for: url)
    do {
        try data.write(to: temporary)
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw EngineError.io("cannot write '\(path)': \(error.localizedDescription) (check that the folder exists, is writable and the disk is not full)")
    }
    try moveAtomically(temporary, to: url)
}

/// Creates the output folder `path` (and its parents) if needed, and checks that it is writable.
public func createOutputFolder(_ path: String) throws {
    let fm = FileManager.default
    do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
        throw EngineError.io("cannot create output folder '\(path)' (a part of the path is a file or not writable); choose a writable folder with --out")
    }
    guard fm.isWritableFile(atPath: path) else { throw EngineError.io("output folder '\(path)' is not writable; choose a writable folder with --out") }
}
