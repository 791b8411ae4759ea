import Foundation
import GPUEngine

/// bytes → safetensors header checks → every tensor converted to fp32: what `amgpu --model
/// file.safetensors` does before handing the tensors to an architecture builder.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    guard let file = try? SafetensorsFile(data: data, path: "fuzz.safetensors") else { return 0 }
    for name in file.names { _ = try? file.tensor(name) }
    return 0
}
