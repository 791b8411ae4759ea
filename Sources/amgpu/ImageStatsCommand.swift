import ArgumentParser
import Foundation
import GPUEngine

/// `amgpu image-stats`: spatial-coherence numbers of JPEG and PNG images (see `ImageStatistics`).
struct ImageStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image-stats",
        abstract: "Spatial-coherence statistics of images (JPEG or PNG): low-frequency power fraction and autocorrelation.",
        discussion: """
        For each image: the share of the luminance power spectrum at frequencies ≤ --cutoff cycles/pixel
        (white noise ≈ π·cutoff², large smooth structure ≈ 1) and the autocorrelation at the given lags.
        The last line summarizes all images (mean ± std). Folders are expanded to the JPEG and PNG files
        directly in them (by their bytes, sorted by name; other files are skipped), grid.png excluded.
        """)

    @Argument(help: "Image files (JPEG or PNG) or folders of them.") var paths: [String]
    @Option(name: .long, help: "Cut-off frequency in cycles per pixel (default 1/16: periods of 16 px and longer).")
    var cutoff: Double = ImageStatistics.defaultCutoff
    @Option(name: .long, parsing: .upToNextOption, help: "Autocorrelation lags in pixels.") var lags: [Int] = [1, 4, 16]
    @Flag(name: .long, help: "Print JSON (per image and summary) instead of text.") var json = false

    func run() throws {
        try runReportingErrors {
            var files: [String] = []
            for path in paths {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                    throw EngineError.io("no such file or folder: '\(path)'")
                }
                if isDirectory.boolValue {
                    // Every JPEG and PNG directly in the folder (by their bytes), except its own grid.png.
                    let listing = try ImageFolder.list(path, recursive: false)
                    let images = listing.images.filter { ($0 as NSString).lastPathComponent != "grid.png" }
                    guard !images.isEmpty else { throw EngineError.io("folder '\(path)' holds no JPEG or PNG image other than grid.png") }
                    files += images
                } else {
                    files.append(path)
                }
            }
            let stats = try files.map { try ImageStatistics(image: try ImageFile.read($0), cutoff: cutoff, lags: lags) }
            let summary = try ImageStatisticsSummary(stats)
            if json {
                struct Entry: Encodable { var file: String; var statistics: ImageStatistics }
                struct Output: Encodable { var images: [Entry]; var summary: ImageStatisticsSummary }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                let data = try encoder.encode(Output(images: zip(files, stats).map { Entry(file: $0, statistics: $1) }, summary: summary))
                print(String(decoding: data, as: UTF8.self))
                return
            }
            let lagHeader = lags.map { "ac(\($0))" }.joined(separator: "  ")
            print("low-freq  \(lagHeader)  file   (cut-off \(String(format: "%.4f", cutoff)) cycles/px)")
            for (file, s) in zip(files, stats) {
                let acs = s.autocorrelations.map { String(format: "%6.3f", $0) }.joined(separator: "  ")
                print(String(format: "%8.3f  ", s.lowFrequencyFraction) + acs + "  " + file)
            }
            let acs = summary.autocorrelationMeans.map { String(format: "%6.3f", $0) }.joined(separator: "  ")
            print(String(format: "%8.3f  ", summary.lowFrequencyFractionMean) + acs
                  + String(format: "  mean of %d images (low-freq std %.3f)", summary.count, summary.lowFrequencyFractionStd))
        }
    }
}
