import Foundation

/// A tiny built-in 5×7 bitmap font (upper-case letters, digits, common punctuation) for labelling
/// panels without a font library. Lower-case letters are drawn as upper case; unknown characters as '?'.
public enum BitmapFont {
    public static let glyphWidth = 5
    public static let glyphHeight = 7
    /// Horizontal advance per character (glyph + 1 pixel of spacing), at scale 1.
    public static let advance = 6

    /// Each glyph: 7 rows of 5 columns, '#' = ink, separated by '/'.
    static let glyphs: [Character: String] = [
        "A": ".###./#...#/#...#/#####/#...#/#...#/#...#",
        "B": "####./#...#/#...#/####./#...#/#...#/####.",
        "C": ".###./#...#/#..../#..../#..../#...#/.###.",
        "D": "####./#...#/#...#/#...#/#...#/#...#/####.",
        "E": "#####/#..../#..../####./#..../#..../#####",
        "F": "#####/#..../#..../####./#..../#..../#....",
        "G": ".###./#...#/#..../#.###/#...#/#...#/.####",
        "H": "#...#/#...#/#...#/#####/#...#/#...#/#...#",
        "I": ".###./..#../..#../..#../..#../..#../.###.",
        "J": "..###/...#./...#./...#./...#./#..#./.##..",
        "K": "#...#/#..#./#.#../##.../#.#../#..#./#...#",
        "L": "#..../#..../#..../#..../#..../#..../#####",
        "M": "#...#/##.##/#.#.#/#.#.#/#...#/#...#/#...#",
        "N": "#...#/#...#/##..#/#.#.#/#..##/#...#/#...#",
        "O": ".###./#...#/#...#/#...#/#...#/#...#/.###.",
        "P": "####./#...#/#...#/####./#..../#..../#....",
        "Q": ".###./#...#/#...#/#...#/#.#.#/#..#./.##.#",
        "R": "####./#...#/#...#/####./#.#../#..#./#...#",
        "S": ".####/#..../#..../.###./....#/....#/####.",
        "T": "#####/..#../..#../..#../..#../..#../..#..",
        "U": "#...#/#...#/#...#/#...#/#...#/#...#/.###.",
        "V": "#...#/#...#/#...#/#...#/#...#/.#.#./..#..",
        "W": "#...#/#...#/#...#/#.#.#/#.#.#/#.#.#/.#.#.",
        "X": "#...#/#...#/.#.#./..#../.#.#./#...#/#...#",
        "Y": "#...#/#...#/.#.#./..#../..#../..#../..#..",
        "Z": "#####/....#/...#./..#../.#.../#..../#####",
        "0": ".###./#...#/#..##/#.#.#/##..#/#...#/.###.",
        "1": "..#../.##../..#../..#../..#../..#../.###.",
        "2": ".###./#...#/....#/...#./..#../.#.../#####",
        "3": "#####/...#./..#../...#./....#/#...#/.###.",
        "4": "...#./..##./.#.#./#..#./#####/...#./...#.",
        "5": "#####/#..../####./....#/....#/#...#/.###.",
        "6": "..##./.#.../#..../####./#...#/#...#/.###.",
        "7": "#####/....#/...#./..#../.#.../.#.../.#...",
        "8": ".###./#...#/#...#/.###./#...#/#...#/.###.",
        "9": ".###./#...#/#...#/.####/....#/...#./.##..",
        " ": "...../...../...../...../...../...../.....",
        ".": "...../...../...../...../...../.##../.##..",
        ",": "...../...../...../...../.##../..#../.#...",
        ":": "...../.##../.##../...../.##../.##../.....",
        ";": "...../.##../.##../...../.##../..#../.#...",
        "%": "##.../##..#/...#./..#../.#.../#..##/...##",
        "-": "...../...../...../#####/...../...../.....",
        "+": "...../..#../..#../#####/..#../..#../.....",
        "/": "...../....#/...#./..#../.#.../#..../.....",
        "(": "...#./..#../.#.../.#.../.#.../..#../...#.",
        ")": ".#.../..#../...#./...#./...#./..#../.#...",
        "'": "..#../..#../.#.../...../...../...../.....",
        "\"": ".#.#./.#.#./...../...../...../...../.....",
        "=": "...../...../#####/...../#####/...../.....",
        "_": "...../...../...../...../...../...../#####",
        "!": "..#../..#../..#../..#../..#../...../..#..",
        "?": ".###./#...#/....#/...#./..#../...../..#..",
        "#": ".#.#./.#.#./#####/.#.#./#####/.#.#./.#.#.",
        "<": "...#./..#../.#.../#..../.#.../..#../...#.",
        ">": ".#.../..#../...#./....#/...#./..#../.#...",
        "*": "...../..#../#.#.#/.###./#.#.#/..#../.....",
        "&": ".##../#..#./#.#../.#.../#.#.#/#..#./.##.#",
        "[": ".###./.#.../.#.../.#.../.#.../.#.../.###.",
        "]": ".###./...#./...#./...#./...#./...#./.###.",
        "|": "..#../..#../..#../..#../..#../..#../..#..",
        "∞": "...../...../.#.#./#.#.#/.#.#./...../.....",
        "δ": ".###./.#.../..#../.###./#...#/#...#/.###.",
        "ε": "...../.###./#..../.##../#..../.###./.....",
        "λ": "#..../.#.../.#.../..#../.#.#./#...#/#...#",
        "×": "...../#...#/.#.#./..#../.#.#./#...#/.....",
        "→": "...../..#../...#./#####/...#./..#../.....",
    ]

    /// The 7×5 ink mask of a character (row-major), '?' for characters the font lacks.
    static func mask(_ ch: Character) -> [Bool] {
        var key: Character = "?"
        let upper = String(ch).uppercased()
        if glyphs[ch] != nil {
            key = ch
        } else if upper.count == 1, let u = upper.first, glyphs[u] != nil {
            key = u
        }
        let rows = (glyphs[key] ?? glyphs["?"] ?? "").split(separator: "/")
        var out = [Bool](repeating: false, count: glyphWidth * glyphHeight)
        for (y, row) in rows.prefix(glyphHeight).enumerated() {
            for (x, c) in row.prefix(glyphWidth).enumerated() { out[y * glyphWidth + x] = c == "#" }
        }
        return out
    }

    /// Width in pixels of `text` at `scale`.
    public static func width(of text: String, scale: Int = 1) -> Int {
        max(0, text.count * advance * scale - scale)
    }

    /// Draws `text` into `image` with its top-left corner at (x, y), clipped to the image.
    public static func draw(_ text: String, into image: inout RGBImage, x: Int, y: Int, scale: Int = 1,
                            color: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        var penX = x
        for ch in text {
            let m = mask(ch)
            for gy in 0..<glyphHeight {
                for gx in 0..<glyphWidth where m[gy * glyphWidth + gx] {
                    for sy in 0..<scale {
                        for sx in 0..<scale {
                            let px = penX + gx * scale + sx, py = y + gy * scale + sy
                            guard px >= 0, px < image.width, py >= 0, py < image.height else { continue }
                            let i = (py * image.width + px) * 3
                            image.pixels[i] = color.0
                            image.pixels[i + 1] = color.1
                            image.pixels[i + 2] = color.2
                        }
                    }
                }
            }
            penX += advance * scale
        }
    }

    /// `text` shortened with "..." to fit `maxWidth` pixels at `scale`.
    public static func fit(_ text: String, maxWidth: Int, scale: Int = 1) -> String {
        let maxChars = max(0, (maxWidth + scale) / (advance * scale))
        guard text.count > maxChars else { return text }
        guard maxChars > 3 else { return String(text.prefix(maxChars)) }
        return String(text.prefix(maxChars - 3)).trimmingCharacters(in: .whitespaces) + "..."
    }
}

/// A panel of equally sized images side by side on white, each with lines of text below it.
public enum Panel {
    public static func compose(_ images: [RGBImage], captions: [[String]], gap: Int = 8, margin: Int = 8, scale: Int = 1) throws -> RGBImage {
        guard let first = images.first else { throw EngineError.invalidInput("a panel needs at least one image") }
        for im in images where im.width != first.width || im.height != first.height {
            throw EngineError.shapeMismatch("panel images must have the same size, got \(im.width)×\(im.height) and \(first.width)×\(first.height)")
        }
        let lines = captions.map(\.count).max() ?? 0
        let lineHeight = (BitmapFont.glyphHeight + 3) * scale
        let width = margin * 2 + images.count * first.width + (images.count - 1) * gap
        let height = margin * 2 + first.height + (lines > 0 ? 4 + lines * lineHeight : 0)
        var out = RGBImage(width: width, height: height, pixels: [UInt8](repeating: 255, count: width * height * 3))
        for (k, im) in images.enumerated() {
            let x0 = margin + k * (first.width + gap)
            for y in 0..<im.height {
                let src = y * im.width * 3
                let dst = ((margin + y) * width + x0) * 3
                out.pixels.replaceSubrange(dst..<(dst + im.width * 3), with: im.pixels[src..<(src + im.width * 3)])
            }
            if k < captions.count {
                for (l, text) in captions[k].enumerated() {
                    let line = BitmapFont.fit(text, maxWidth: first.width, scale: scale)
                    BitmapFont.draw(line, into: &out, x: x0, y: margin + first.height + 4 + l * lineHeight, scale: scale)
                }
            }
        }
        return out
    }
}
