import Foundation

/// The colour transparent pixels are composited over when an image with alpha is read.
public struct BackgroundColor: Sendable, Equatable, CustomStringConvertible {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8

    public init(red: UInt8, green: UInt8, blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    public static let white = BackgroundColor(red: 255, green: 255, blue: 255)
    public static let black = BackgroundColor(red: 0, green: 0, blue: 0)

    /// `white`, `black`, `gray`/`grey` (128) or `R,G,B` with each value an integer 0…255.
    public init(parsing text: String) throws {
        switch text.lowercased() {
        case "white": self = .white
        case "black": self = .black
        case "gray", "grey": self = BackgroundColor(red: 128, green: 128, blue: 128)
        default:
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { UInt8($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 3, let r = parts[0], let g = parts[1], let b = parts[2] else {
                throw EngineError.invalidInput("unknown background '\(text)': use white, black, gray or R,G,B with three integers 0–255 (e.g. --background 124,116,104)")
            }
            self = BackgroundColor(red: r, green: g, blue: b)
        }
    }

    public var description: String { "\(red),\(green),\(blue)" }
}

/// What the first bytes of a file say it is.
public enum ImageFormat: Sendable, Equatable {
    case png
    case jpeg
    /// Not readable by amgpu; the associated value names what it looks like ("GIF", "WebP", "BMP",
    /// "TIFF", "HEIF/AVIF", "text", or "unknown data").
    case other(String)

    /// Sniffs the magic bytes (the extension is never consulted).
    public static func sniff(_ head: Data) -> ImageFormat {
        let b = [UInt8](head.prefix(16))
        func starts(_ p: [UInt8], at offset: Int = 0) -> Bool { b.count >= offset + p.count && Array(b[offset..<(offset + p.count)]) == p }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts(Array("GIF8".utf8)) { return .other("GIF") }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return .other("WebP") }
        if starts(Array("BM".utf8)) { return .other("BMP") }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return .other("TIFF") }
        if starts(Array("ftyp".utf8), at: 4) { return .other("HEIF/AVIF") }
        if starts([0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20]) || starts([0xFF, 0x4F, 0xFF, 0x51]) { return .other("JPEG 2000") }
        if !b.isEmpty && b.allSatisfy({ $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || (0x20..<0x7F).contains($0) }) { return .other("text") }
        return .other("unknown data")
    }
}

/// The one entry point for reading an input image: sniffs the magic bytes and dispatches to
/// `PNGFile` (every colour type and bit depth, alpha composited over `background`) or `JPEGFile`
/// (EXIF orientation applied). Both refuse images over `PNGFile.maxSide` / `PNGFile.maxPixels`
/// from the header, before decoding.
public enum ImageFile {
    /// What `amgpu` reads, for messages.
    public static let formats = "JPEG and PNG"

    /// Reads the image at `path` as upright 8-bit RGB.
    public static func read(_ path: String, background: BackgroundColor = .white) throws -> RGBImage {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw EngineError.io("cannot read image '\(path)': no such file; check the path")
        }
        guard !isDirectory.boolValue else {
            throw EngineError.io("cannot read image '\(path)': it is a folder; give a file, or use `amgpu classify --images \(path)` for a folder")
        }
        return try read(data: fileBytes(path), name: path, background: background)
    }

    /// The bytes of an existing image file, memory-mapped (empty for an empty file).
    static func fileBytes(_ path: String) throws -> Data {
        // An empty file never reaches Data(contentsOf:): mapping one leaks a 4 KiB buffer inside
        // Foundation (LeakSanitizer, swift 6.3.1), and there is nothing to decode anyway.
        if (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.intValue == 0 {
            return Data()
        }
        do { return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw EngineError.io("cannot read image '\(path)': \(error.localizedDescription)")
        }
    }

    /// Decodes image bytes `data`; `name` only names the image in messages.
    public static func read(data: Data, name: String, background: BackgroundColor = .white) throws -> RGBImage {
        guard !data.isEmpty else {
            throw EngineError.io("cannot read image '\(name)': the file is empty (amgpu reads \(formats) files; convert other formats first, e.g. `convert photo.webp photo.png`)")
        }
        switch ImageFormat.sniff(data) {
        case .png: return try PNGFile.read(data: data, name: name, background: background)
        case .jpeg: return try JPEGFile.read(data: data, name: name)
        case .other(let kind):
            throw EngineError.io("cannot read image '\(name)': it is not a JPEG or PNG file (it looks like \(kind)); amgpu reads \(formats) files: convert other formats first, e.g. `convert photo.webp photo.png`")
        }
    }
}
