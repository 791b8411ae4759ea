import Foundation
import FuzzDriver
import GPUEngine

/// bytes → safetensors header checks → every tensor converted to fp32: what `amgpu --model
/// file.safetensors` does before handing the tensors to an architecture builder.
func fuzzSafetensors(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    guard let file = try? SafetensorsFile(data: data, path: "fuzz.safetensors") else { return 0 }
    for name in file.names { _ = try? file.tensor(name) }
    return 0
}

@main enum Main {
    static func main() {
        exit(amgpu_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv) { fuzzSafetensors($0, $1) })
    }
}
