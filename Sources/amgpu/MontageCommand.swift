import ArgumentParser
import Foundation
import GPUEngine

/// `amgpu montage`: lays PNGs of one size out in a captioned grid (the figures of docs/results.md).
struct MontageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "montage",
        abstract: "Lay PNG images of one size out in a grid with captions (figures for reports).",
        discussion: """
        Each image gets caption lines: by default its file name without .png; with --captions, one entry per
        image, lines separated by '|'. Example:
          amgpu montage --columns 4 --title "EfficientNet-Lite0 classes" --out fig.png out/f1/*.png
        """)

    @Argument(help: "PNG files, all of the same size.") var files: [String]
    @Option(name: .long, help: "Images per row.") var columns: Int = 4
    @Option(name: .long, help: "Title line above the grid.") var title: String?
    @Option(name: .long, parsing: .upToNextOption, help: "One caption per image; '|' separates lines.") var captions: [String] = []
    @Option(name: .long, help: "Text scale (1 = 5×7-pixel glyphs).") var textScale: Int = 1
    @Option(name: .long, help: "Output PNG path.") var out: String

    func validate() throws {
        guard captions.isEmpty || captions.count == files.count else {
            throw ValidationError("--captions has \(captions.count) entries for \(files.count) images; give one per image")
        }
    }

    func run() throws {
        try runReportingErrors {
            let images = try files.map { try ImageFile.read($0) }
            let lines = captions.isEmpty
                ? files.map { [(($0 as NSString).lastPathComponent as NSString).deletingPathExtension] }
                : captions.map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
            let figure = try Montage.compose(images, captions: lines, columns: columns, title: title, scale: textScale)
            try PNGFile.write(figure, to: out)
            print("wrote \(out) (\(figure.width)×\(figure.height), \(images.count) images)")
        }
    }
}
