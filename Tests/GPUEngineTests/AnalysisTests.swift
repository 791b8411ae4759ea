import Foundation
import Testing
@testable import GPUEngine

/// `ImageStatistics` against images whose answers are known in closed form.
@Suite struct ImageStatisticsTests {
    static func image(width w: Int, height h: Int, _ value: (Int, Int) -> Double) -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let v = UInt8(max(0, min(255, (value(x, y) * 255).rounded())))
                for c in 0..<3 { pixels[(y * w + x) * 3 + c] = v }
            }
        }
        return RGBImage(width: w, height: h, pixels: pixels)
    }

    @Test func whiteNoiseSpreadsPowerOverTheFrequencySquare() throws {
        // Power of white noise is flat, so the low-frequency share is the disk's share of [−½, ½)²: π·r².
        var rng = SeededRandom(seed: 5)
        for (w, h) in [(64, 64), (67, 45)] {
            let noise = Self.image(width: w, height: h) { _, _ in Double(rng.uniform(0, 1)) }
            let s = try ImageStatistics(image: noise, cutoff: 0.25, lags: [1, 3])
            #expect(abs(s.lowFrequencyFraction - Double.pi * 0.0625) < 0.04, "white noise \(w)×\(h): \(s.lowFrequencyFraction)")
            #expect(s.autocorrelations.allSatisfy { abs($0) < 0.06 }, "white noise autocorrelation \(s.autocorrelations)")
        }
    }

    @Test func slowAndFastSinusoidsLandOnEitherSideOfTheCutoff() throws {
        // A 2-cycle cosine across 64 px has f = 1/32 < 1/16: all its power is low; an 8-px period (f = 1/8) none.
        let slow = Self.image(width: 64, height: 64) { x, _ in 0.5 + 0.4 * cos(2 * Double.pi * 2 * Double(x) / 64) }
        let fast = Self.image(width: 64, height: 64) { x, y in 0.5 + 0.4 * cos(2 * Double.pi * Double(x + y) / 8) }
        let s = try ImageStatistics(image: slow), f = try ImageStatistics(image: fast)
        #expect(s.lowFrequencyFraction > 0.99, "slow cosine: \(s.lowFrequencyFraction)")
        #expect(f.lowFrequencyFraction < 0.01, "fast cosine: \(f.lowFrequencyFraction)")
        #expect(s.autocorrelations[0] > 0.95, "slow cosine lag 1: \(s.autocorrelations[0])")
    }

    @Test func checkerboardAutocorrelationIsMinusOneAtLagOne() throws {
        let board = Self.image(width: 30, height: 20) { x, y in (x + y) % 2 == 0 ? 0.9 : 0.1 }
        let s = try ImageStatistics(image: board, lags: [1, 2])
        #expect(abs(s.autocorrelations[0] + 1) < 1e-9 && abs(s.autocorrelations[1] - 1) < 1e-9, "\(s.autocorrelations)")
        #expect(s.lowFrequencyFraction < 1e-9, "a one-pixel checkerboard has all its power at Nyquist: \(s.lowFrequencyFraction)")
    }

    @Test func badSettingsAreRejected() throws {
        let tiny = Self.image(width: 8, height: 8) { x, _ in Double(x) / 8 }
        #expect(throws: EngineError.self) { try ImageStatistics(image: tiny, cutoff: 0) }
        #expect(throws: EngineError.self) { try ImageStatistics(image: tiny, lags: [8]) }
        #expect(throws: EngineError.self) { try ImageStatistics(image: Self.image(width: 1, height: 5) { _, _ in 0.5 }) }
        #expect(throws: EngineError.self) { try ImageStatisticsSummary([]) }
    }

    @Test func summaryAveragesImages() throws {
        let a = try ImageStatistics(image: Self.image(width: 32, height: 32) { x, _ in 0.5 + 0.4 * cos(2 * Double.pi * Double(x) / 32) })
        let b = try ImageStatistics(image: Self.image(width: 32, height: 32) { x, y in (x + y) % 2 == 0 ? 0.9 : 0.1 })
        let summary = try ImageStatisticsSummary([a, b])
        #expect(summary.count == 2)
        #expect(abs(summary.lowFrequencyFractionMean - (a.lowFrequencyFraction + b.lowFrequencyFraction) / 2) < 1e-12)
        #expect(abs(summary.autocorrelationMeans[0] - (a.autocorrelations[0] + b.autocorrelations[0]) / 2) < 1e-12)
        #expect(summary.lowFrequencyFractionStd > 0.5)
    }
}

@Suite struct MontageTests {
    @Test func rowsOfPanelsKeepEveryImageAndItsPlace() throws {
        let colours: [UInt8] = [30, 120, 210]
        let images = colours.map { RGBImage(width: 6, height: 4, pixels: [UInt8](repeating: $0, count: 6 * 4 * 3)) }
        let figure = try Montage.compose(images, captions: [["a"], ["b", "two lines"], ["c"]], columns: 2, title: "T")
        // Panels: margin 8, gap 8 → a row of 2 is 8 + 6 + 8 + 6 + 8 = 36 wide.
        #expect(figure.width == 36)
        // Title block (7 + 6 + 8 = 21), then each row: 8 + 4 + 4 + 2 lines × 10 + 8 = 44.
        #expect(figure.height == 21 + 44 + 44)
        func pixel(_ x: Int, _ y: Int) -> UInt8 { figure.pixels[(y * figure.width + x) * 3] }
        #expect(pixel(8, 21 + 8) == 30)           // image 0, top-left
        #expect(pixel(8 + 6 + 8, 21 + 8) == 120)  // image 1, to its right
        #expect(pixel(8, 21 + 44 + 8) == 210)     // image 2, second row
        #expect(pixel(0, 21 + 8) == 255)          // margin stays white
    }

    @Test func mismatchedSizesAndEmptyInputsAreRejected() throws {
        let a = RGBImage(width: 4, height: 4, pixels: [UInt8](repeating: 9, count: 48))
        let b = RGBImage(width: 5, height: 4, pixels: [UInt8](repeating: 9, count: 60))
        #expect(throws: EngineError.self) { try Montage.compose([a, b], captions: [], columns: 2) }
        #expect(throws: EngineError.self) { try Montage.compose([], captions: [], columns: 2) }
        #expect(throws: EngineError.self) { try Montage.compose([a], captions: [], columns: 0) }
    }
}
