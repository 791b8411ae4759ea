import Foundation
import Testing
@testable import GPUEngine

/// Replays the fuzzers' committed inputs (Fuzz/seeds and the minimized crashers in Fuzz/crashers)
/// through the same entry points the fuzz targets call, in the ordinary test build: every crasher
/// must now be rejected with an EngineError (or load), never trap. See scripts/fuzz and docs/reliability.md.
@Suite struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func files(_ kind: String, _ target: String) -> [URL] {
        let dir = root.appendingPathComponent(kind).appendingPathComponent(target)
        return ((try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? []).sorted { $0.path < $1.path }
    }

    @Test func crashersAreCommitted() {
        // The fuzzing runs found these; each one trapped before its fix (docs/reliability.md lists them).
        #expect(Self.files("crashers", "onnx").count >= 3)
        #expect(Self.files("crashers", "safetensors").count >= 1)
    }

    @Test func onnxInputsNeverTrap() throws {
        var rejected = 0, loaded = 0
        for url in Self.files("crashers", "onnx") + Self.files("seeds", "onnx") {
            let data = try Data(contentsOf: url)
            do { _ = try ONNXImporter.load(data: data, path: "/nonexistent/amgpu-fuzz/model.onnx"); loaded += 1 } catch is EngineError { rejected += 1 }
        }
        #expect(rejected >= Self.files("crashers", "onnx").count, "every crasher is rejected cleanly")
        #expect(loaded >= 10, "the seed models still load (\(loaded))")
    }

    @Test func safetensorsInputsNeverTrap() throws {
        var converted = 0
        for url in Self.files("crashers", "safetensors") + Self.files("seeds", "safetensors") {
            guard let file = try? SafetensorsFile(data: try Data(contentsOf: url), path: url.lastPathComponent) else { continue }
            for name in file.names { if (try? file.tensor(name)) != nil { converted += 1 } }
        }
        #expect(converted >= 8)
    }

    @Test func fp16SubnormalsConvertExactly() {
        // The safetensors crasher: halfToFloat trapped on subnormals with a mantissa under 0x200.
        #expect(halfToFloat(0x0001) == 0x1p-24)
        #expect(halfToFloat(0x8001) == -0x1p-24)
        #expect(halfToFloat(0x0003) == 3 * 0x1p-24)
        #expect(halfToFloat(0x0200) == 0x1p-15)
        #expect(halfToFloat(0x03FF) == Float(0x3FF) * 0x1p-24)
        #expect(halfToFloat(0x0400) == 0x1p-14)     // smallest normal
        #expect(halfToFloat(0x3C00) == 1)
        #expect(halfToFloat(0x0000) == 0 && halfToFloat(0x8000).sign == .minus)
    }

    @Test func pngInputsNeverTrap() throws {
        var decoded = 0
        for url in Self.files("crashers", "png") + Self.files("seeds", "png") {
            if let image = try? PNGFile.read(data: try Data(contentsOf: url), name: url.lastPathComponent) {
                #expect(image.pixels.count == image.width * image.height * 3)
                decoded += 1
            }
        }
        #expect(decoded >= 8)
    }
}
