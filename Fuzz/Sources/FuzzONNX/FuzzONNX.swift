import Foundation
import FuzzDriver
import GPUEngine

/// bytes → ONNX protobuf → import (initializers, constant folding, shape inference, pattern fusion,
/// op mapping) → Model: the path `amgpu --model file.onnx` takes. Any thrown error is a clean
/// rejection; a crash, hang or runaway allocation is a bug.
/// The input size comes from the file (symbolic sizes are rejected). The model folder does not exist, so external-data references fail cleanly instead of reading files.
func fuzzONNX(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    _ = try? ONNXImporter.load(data: data, path: "/nonexistent/amgpu-fuzz/model.onnx", imageSize: nil)
    return 0
}

@main enum Main {
    static func main() {
        exit(amgpu_fuzz_main(CommandLine.argc, CommandLine.unsafeArgv) { fuzzONNX($0, $1) })
    }
}
