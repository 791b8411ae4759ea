import Foundation
import Testing
@testable import GPUEngine

@Suite struct PNGTests {
    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-png-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func roundTripIsExact() throws {
        let dir = try Self.temporaryFolder()
        var rng = SeededRandom(seed: 21)
        let (w, h) = (13, 7)
        let pixels = (0..<(w * h * 3)).map { _ in UInt8(rng.next() % 256) }
        let image = RGBImage(width: w, height: h, pixels: pixels)
        let path = dir.appendingPathComponent("x.png").path
        try PNGFile.write(image, to: path)
        #expect(try PNGFile.read(path) == image)
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["x.png"])
    }

    @Test func tensorConversionQuantisesAndClamps() throws {
        let t = HostTensor(shape: [1, 3, 1, 2], values: [0, 1, 0.5, 2, -1, .nan])
        let image = try RGBImage(tensor: t)
        #expect(image.pixels == [0, 128, 0, 255, 255, 0])
        let back = image.tensor()
        #expect(back.shape == [1, 3, 1, 2])
        #expect(abs(back.values[2] - 128.0 / 255) < 1e-6)
    }

    @Test func badFilesGiveClearErrors() throws {
        let dir = try Self.temporaryFolder()
        let notPNG = dir.appendingPathComponent("fake.png")
        try Data("this is not an image".utf8).write(to: notPNG)
        #expect(throws: EngineError.self) { try PNGFile.read(notPNG.path) }
        do { _ = try PNGFile.read(notPNG.path) } catch { #expect("\(error)".contains("fake.png")) }
        #expect(throws: EngineError.self) { try PNGFile.read(dir.appendingPathComponent("missing.png").path) }
        // Truncated PNG: a real file cut in half.
        let good = dir.appendingPathComponent("good.png")
        try PNGFile.write(RGBImage(width: 32, height: 32, pixels: [UInt8](repeating: 77, count: 32 * 32 * 3)), to: good.path)
        let bytes = try Data(contentsOf: good)
        let cut = dir.appendingPathComponent("cut.png")
        try bytes.prefix(bytes.count / 2).write(to: cut)
        #expect(throws: EngineError.self) { try PNGFile.read(cut.path) }
    }

    @Test func unwritableFolderFailsWithoutPartialFiles() throws {
        let image = RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 9, count: 12))
        #expect(throws: EngineError.self) { try PNGFile.write(image, to: "/nonexistent-folder-amgpu/x.png") }
    }
}
