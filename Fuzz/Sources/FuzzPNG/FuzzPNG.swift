import Foundation
import FuzzDriver
import GPUEngine

/// bytes → libpng (simplified API) → 8-bit RGB → the [1, 3, H, W] tensor: what `--image photo.png` reads.
func fuzzPNG(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    guard let image = try? PNGFile.read(data: data, name: "fuzz.png") else { return 0 }
    _ = image.tensor()
    return 0
}

@main enum Main {
    static func main() {
        exit(amgpu_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv) { fuzzPNG($0, $1) })
    }
}
