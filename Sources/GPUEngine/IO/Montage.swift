import Foundation

/// A figure: equally sized images in rows of `columns`, each with caption lines below it, an optional
/// title line on top — all on white, drawn with `BitmapFont` (no font files needed).
public enum Montage {
    public static func compose(_ images: [RGBImage], captions: [[String]], columns: Int, title: String? = nil,
                               scale: Int = 1) throws -> RGBImage {
        guard !images.isEmpty else { throw EngineError.invalidInput("a montage needs at least one image") }
        guard columns >= 1 else { throw EngineError.invalidAttribute("a montage needs at least 1 column, got \(columns)") }
        guard scale >= 1, scale <= 8 else { throw EngineError.invalidAttribute("text scale must lie in 1...8, got \(scale)") }
        var rows: [RGBImage] = []
        for start in stride(from: 0, to: images.count, by: columns) {
            let end = min(start + columns, images.count)
            let rowCaptions = (start..<end).map { $0 < captions.count ? captions[$0] : [] }
            // Pad every row's caption block to the same line count so rows line up.
            let lines = captions.map(\.count).max() ?? 0
            let padded = rowCaptions.map { $0 + Array(repeating: "", count: lines - $0.count) }
            rows.append(try Panel.compose(Array(images[start..<end]), captions: padded, scale: scale))
        }
        let titleHeight = title == nil ? 0 : (BitmapFont.glyphHeight + 6) * scale + 8
        let width = rows.map(\.width).max() ?? 0
        let height = titleHeight + rows.reduce(0) { $0 + $1.height }
        var out = RGBImage(width: width, height: height, pixels: [UInt8](repeating: 255, count: width * height * 3))
        if let title {
            BitmapFont.draw(BitmapFont.fit(title, maxWidth: width - 16, scale: scale), into: &out, x: 8, y: 8, scale: scale)
        }
        var y0 = titleHeight
        for row in rows {
            for y in 0..<row.height {
                let src = y * row.width * 3, dst = ((y0 + y) * width) * 3
                out.pixels.replaceSubrange(dst..<(dst + row.width * 3), with: row.pixels[src..<(src + row.width * 3)])
            }
            y0 += row.height
        }
        return out
    }
}
