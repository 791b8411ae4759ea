import Foundation
import FuzzDriver
import GPUEngine

/// bytes → ImageFile.read (magic-byte sniffing) → libjpeg-turbo through the CJPEG shim (header, size check,
/// decode, CMYK conversion, EXIF orientation) → the [1, 3, H, W] tensor: what `--image photo.jpg` reads.
func fuzzJPEG(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    guard let image = try? ImageFile.read(data: data, name: "fuzz.jpg") else { return 0 }
    _ = image.tensor()
    return 0
}

@main enum Main {
    static func main() {
        exit(amgpu_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv) { fuzzJPEG($0, $1) })
    }
}
