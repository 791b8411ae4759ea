import ArgumentParser
import Foundation
import GPUEngine

/// `amgpu maco-spectrum`: the mean magnitude spectrum of a folder of photos, for `--param maco --maco-spectrum`.
struct MacoSpectrumCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maco-spectrum",
        abstract: "Estimate MaCo's magnitude spectrum (mean |FFT| per decorrelated channel) from a folder of photos.",
        discussion: """
        Each photo is centre-cropped to SIZE×SIZE; the result is an .npy float32 [3, SIZE, SIZE/2+1]
        (the layout of numpy's rfft2) to pass to `visualize --param maco --maco-spectrum FILE --image-size SIZE`.
        """)

    @Option(name: .long, help: "Folder of photos (JPEG or PNG, searched recursively).") var images: String
    @Option(name: .long, help: "Side of the square images the spectrum is for (the AM image size).") var size: Int = 128
    @Option(name: .long, help: "Where to write the .npy.") var out: String
    @Option(name: .long, help: "Use at most this many photos (in path order; 0 = all).") var limit: Int = 0

    func validate() throws {
        guard (2...1024).contains(size) else { throw ValidationError("--size must lie in 2...1024, got \(size)") }
        guard limit >= 0 else { throw ValidationError("--limit must be ≥ 0, got \(limit)") }
        guard out.hasSuffix(".npy") else { throw ValidationError("--out must name an .npy file, got '\(out)'") }
    }

    func run() throws {
        try runReportingErrors {
            let folder = try ImageFolder.list(images)
            let paths = limit > 0 ? Array(folder.images.prefix(limit)) : folder.images
            let photos = try paths.map { try ImageFile.read($0) }
            let spectrum = try MacoSpectrum.estimate(photos, size: size)
            try NPYFile.write(spectrum, to: out)
            print("wrote \(out): [3, \(size), \(spectrum.shape[2])] from \(photos.count) photo(s)\(folder.skipped.isEmpty ? "" : ", \(folder.skipped.count) file(s) skipped")")
        }
    }
}
