import Foundation
import GPUEngine

/// bytes → libpng (simplified API) → 8-bit RGB → the [1, 3, H, W] tensor: what `--image photo.png` reads.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    guard let image = try? PNGFile.read(data: data, name: "fuzz.png") else { return 0 }
    _ = image.tensor()
    return 0
}
