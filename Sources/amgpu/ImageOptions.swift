import ArgumentParser
import Foundation
import GPUEngine

/// How input images are read: the background that transparent pixels are composited over.
struct ImageOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Background for transparent pixels of input PNGs: white, black, gray or R,G,B (0–255).", valueName: "colour"),
            completion: .list(["white", "black", "gray"]), transform: parseBackground)
    var background: BackgroundColor = .white

    func backgroundColor() -> BackgroundColor { background }

    /// Reads an input image (JPEG or PNG, sniffed from its bytes; EXIF orientation applied).
    func read(_ path: String) throws -> RGBImage { try ImageFile.read(path, background: background) }
}

/// Prints a folder's skipped files on stderr, one line each.
func reportSkipped(_ skipped: [ImageFolder.Skipped]) {
    for s in skipped { printError("amgpu: skipped \(s.path): \(s.reason)") }
}
