import Foundation
import Testing
@testable import GPUEngine

/// Reading input images: JPEG through libjpeg-turbo (compared with Pillow's decode), EXIF orientation,
/// PNG of every colour type with alpha over a chosen background, format sniffing, bad files, folders.
/// Fixtures: Tests/GPUEngineTests/Fixtures/images, written by scripts/tools/image_fixtures.py.
@Suite struct ImageReadingTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/images")
    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    static func temporaryFolder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("amgpu-images-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Largest |a − b| over all bytes, and the first index where it occurs.
    static func maxDifference(_ a: RGBImage, _ b: RGBImage) -> (Int, Int) {
        var worst = 0, at = -1
        for i in a.pixels.indices {
            let d = abs(Int(a.pixels[i]) - Int(b.pixels[i]))
            if d > worst { worst = d; at = i }
        }
        return (worst, at)
    }

    /// Bound on |amgpu − Pillow| per channel. Both decode with libjpeg-turbo's default (accurate integer
    /// IDCT, fancy upsampling): Debian's 2.1.5 here, Pillow 13.0's bundled 3.2. Measured max: see
    /// docs/models.md ("Images") — 0 on every fixture, CMYK included.
    static let pillowBound = [
        "baseline_420": 0, "baseline_444": 0, "progressive": 0, "gray": 0, "cmyk": 0, "cmyk_no_adobe": 0, "junk_before_eoi": 0,
        "exif_1": 0, "exif_2": 0, "exif_3": 0, "exif_4": 0, "exif_5": 0, "exif_6": 0, "exif_7": 0, "exif_8": 0,
    ]

    @Test(arguments: pillowBound.keys.sorted())
    func jpegDecodeMatchesPillow(_ name: String) throws {
        let ours = try ImageFile.read(Self.fixture(name + ".jpg"))
        let reference = try PNGFile.read(Self.fixture(name + ".ref.png"))
        #expect(ours.width == reference.width && ours.height == reference.height, "\(name): \(ours.width)×\(ours.height) vs Pillow \(reference.width)×\(reference.height)")
        guard ours.pixels.count == reference.pixels.count else { return }
        let (worst, at) = Self.maxDifference(ours, reference)
        print("amgpu-test: \(name) max |amgpu − Pillow| = \(worst)")
        #expect(worst <= Self.pillowBound[name] ?? 0, "\(name): max difference \(worst) at byte \(at) (pixel \(at / 3))")
        // Not a constant image: the scene's channels span most of 0…255.
        #expect((ours.pixels.max() ?? 0) - (ours.pixels.min() ?? 0) > 150)
    }

    /// The markers of a fixture's segments from SOI up to the first SOS (walked by their lengths).
    static func segments(_ name: String) -> [UInt8] {
        guard let data = try? [UInt8](Data(contentsOf: fixtures.appendingPathComponent(name))) else { return [] }
        var markers: [UInt8] = [], i = 2
        while i + 4 <= data.count, data[i] == 0xFF {
            markers.append(data[i + 1])
            if data[i + 1] == 0xDA { break }
            i += 2 + Int(data[i + 2]) << 8 + Int(data[i + 3])
        }
        return markers
    }

    /// The CMYK fixtures hold explicit inks with K ramping 0 → 255 across x (so the (255 − K) factor is
    /// exercised): the right column (K = 255) is black, the left one (K = 0) is not, and the copy without
    /// the Adobe APP14 segment decodes the same (CMYK is taken as inverted either way, as Pillow does).
    @Test func cmykKeyDarkensAndAdobeMarkerIsOptional() throws {
        let cmyk = try ImageFile.read(Self.fixture("cmyk.jpg"))
        #expect(cmyk.width == 48 && cmyk.height == 32)
        var left = 0, right = 0
        for y in 0..<32 {
            for c in 0..<3 {
                left = max(left, Int(cmyk.pixels[(y * 48) * 3 + c]))
                right = max(right, Int(cmyk.pixels[(y * 48 + 47) * 3 + c]))
            }
        }
        #expect(right <= 8, "K = 255 column is not black: max channel \(right)")
        #expect(left >= 200, "K = 0 column is dark: max channel \(left)")
        let plain = try ImageFile.read(Self.fixture("cmyk_no_adobe.jpg"))
        #expect(plain.width == cmyk.width && plain.height == cmyk.height)
        if plain.pixels.count == cmyk.pixels.count {
            let (worst, at) = Self.maxDifference(plain, cmyk)
            #expect(worst == 0, "without APP14: max difference \(worst) at byte \(at)")
        }
        #expect(Self.segments("cmyk.jpg").contains(0xEE), "cmyk.jpg has no Adobe APP14 segment")
        #expect(!Self.segments("cmyk_no_adobe.jpg").contains(0xEE), "cmyk_no_adobe.jpg still has an Adobe APP14 segment")
    }

    /// Junk between the last scan and EOI ("Corrupt JPEG data: 4 extraneous bytes before marker 0xd9") is
    /// ignored, as Pillow and browsers do: the pixels equal the clean file's. Junk before any other marker
    /// is still an error.
    @Test func extraneousBytesBeforeEOIAreIgnored() throws {
        #expect(try ImageFile.read(Self.fixture("junk_before_eoi.jpg")) == ImageFile.read(Self.fixture("baseline_420.jpg")))
        let base = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("baseline_420.jpg")))
        guard let dqt = (0..<(base.count - 1)).first(where: { base[$0] == 0xFF && base[$0 + 1] == 0xDB }) else {
            Issue.record("no DQT marker in baseline_420.jpg"); return
        }
        let junk = Data(base[..<dqt] + Array("junk!".utf8) + base[dqt...])
        let message = Self.message { try ImageFile.read(data: junk, name: "junk.jpg") }
        #expect(message.contains("junk.jpg") && message.contains("extraneous bytes before marker 0xdb") && message.contains("re-export"), "\(message)")
    }

    /// A 12-bit JPEG (the baseline's SOF precision patched 8 → 12) is an unsupported variant, not damage.
    @Test func unsupportedVariantIsNamed() throws {
        var data = [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent("baseline_420.jpg")))
        guard let sof = (0..<(data.count - 4)).first(where: { data[$0] == 0xFF && data[$0 + 1] == 0xC0 }) else {
            Issue.record("no SOF0 marker in baseline_420.jpg"); return
        }
        #expect(data[sof + 4] == 8)
        data[sof + 4] = 12
        let message = Self.message { try ImageFile.read(data: Data(data), name: "twelve.jpg") }
        #expect(message.contains("twelve.jpg") && message.contains("unsupported JPEG variant") && message.contains("precision 12")
                && message.contains("convert it to an 8-bit baseline JPEG or PNG") && !message.contains("corrupt"), "\(message)")
    }

    /// The scene is 48×32 with a red block in its top-left corner (x < 10, y < 8); after EXIF
    /// orientation the block must be where the orientation moves that corner.
    @Test(arguments: 1...8)
    func exifOrientationIsApplied(_ orientation: Int) throws {
        let stored = try JPEGFile.info(data: Data(contentsOf: Self.fixtures.appendingPathComponent("exif_\(orientation).jpg")), name: "exif")
        #expect(stored.orientation == orientation)
        #expect(stored.width == 48 && stored.height == 32)
        let image = try ImageFile.read(Self.fixture("exif_\(orientation).jpg"))
        let swaps = orientation >= 5
        #expect(image.width == (swaps ? 32 : 48) && image.height == (swaps ? 48 : 32))
        // Same pixel data in every file: ours(orientation) = ours(1) turned by our own transform.
        let upright = try ImageFile.read(Self.fixture("exif_1.jpg"))
        #expect(image == upright.applyingEXIFOrientation(orientation))
        // Where the red corner lands (its centre pixel, stored at (4, 3) in the 48×32 scene).
        let (w, h) = (48, 32)
        let landing: [Int: (Int, Int)] = [1: (4, 3), 2: (w - 1 - 4, 3), 3: (w - 1 - 4, h - 1 - 3), 4: (4, h - 1 - 3),
                                          5: (3, 4), 6: (h - 1 - 3, 4), 7: (h - 1 - 3, w - 1 - 4), 8: (3, w - 1 - 4)]
        let (x, y) = landing[orientation] ?? (0, 0)
        let i = (y * image.width + x) * 3
        #expect(image.pixels[i] > 180 && image.pixels[i + 1] < 80 && image.pixels[i + 2] < 90,
                "orientation \(orientation): pixel (\(x), \(y)) is \(image.pixels[i..<(i + 3)]), not the red corner")
    }

    @Test func exifParserHandlesBothByteOrdersAndBadData() {
        func payload(_ value: UInt16, bigEndian: Bool, type: UInt16 = 3, tag: UInt16 = 0x0112) -> [UInt8] {
            func u16(_ v: UInt16) -> [UInt8] { bigEndian ? [UInt8(v >> 8), UInt8(v & 0xFF)] : [UInt8(v & 0xFF), UInt8(v >> 8)] }
            func u32(_ v: UInt32) -> [UInt8] { bigEndian ? [24, 16, 8, 0].map { UInt8((v >> $0) & 0xFF) } : [0, 8, 16, 24].map { UInt8((v >> $0) & 0xFF) } }
            return Array("Exif".utf8) + [0, 0] + (bigEndian ? Array("MM".utf8) : Array("II".utf8)) + u16(42) + u32(8)
                + u16(2) + u16(0x010F) + u16(2) + u32(4) + u32(0) + u16(tag) + u16(type) + u32(1) + u16(value) + u16(0) + u32(0)
        }
        for v in UInt16(1)...8 {
            #expect(JPEGFile.exifOrientation(payload(v, bigEndian: false)) == Int(v))
            #expect(JPEGFile.exifOrientation(payload(v, bigEndian: true)) == Int(v))
        }
        #expect(JPEGFile.exifOrientation(payload(9, bigEndian: true)) == 1)
        #expect(JPEGFile.exifOrientation(payload(0, bigEndian: false)) == 1)
        #expect(JPEGFile.exifOrientation(payload(6, bigEndian: false, type: 4)) == 1)     // LONG: not a valid Orientation
        #expect(JPEGFile.exifOrientation(payload(6, bigEndian: false, tag: 0x0113)) == 1)
        let good = payload(6, bigEndian: true)
        for cut in [0, 6, 13, 20, good.count - 8] { #expect(JPEGFile.exifOrientation(Array(good.prefix(cut))) == 1, "cut at \(cut)") }
        var badOffset = good
        badOffset[13] = 0xF0   // IFD0 offset far past the end
        #expect(JPEGFile.exifOrientation(badOffset) == 1)
    }

    @Test func sniffingUsesBytesNotNames() {
        #expect(ImageFormat.sniff(Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0])) == .png)
        #expect(ImageFormat.sniff(Data([0xFF, 0xD8, 0xFF, 0xE0])) == .jpeg)
        #expect(ImageFormat.sniff(Data("GIF89a...".utf8)) == .other("GIF"))
        #expect(ImageFormat.sniff(Data("RIFF\u{1}\u{0}\u{0}\u{0}WEBPVP8 ".utf8)) == .other("WebP"))
        #expect(ImageFormat.sniff(Data("BM6\u{0}".utf8)) == .other("BMP"))
        #expect(ImageFormat.sniff(Data([0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0])) == .other("TIFF"))
        #expect(ImageFormat.sniff(Data([0, 0, 0, 0x18] + Array("ftypheic".utf8))) == .other("HEIF/AVIF"))
        #expect(ImageFormat.sniff(Data("hello, world\n".utf8)) == .other("text"))
        #expect(ImageFormat.sniff(Data([0x00, 0x01, 0xFE])) == .other("unknown data"))
        #expect(ImageFormat.sniff(Data()) == .other("unknown data"))
    }

    @Test func pngNamedJPGAndJPEGNamedPNGAreRead() throws {
        let dir = try Self.temporaryFolder()
        try FileManager.default.copyItem(atPath: Self.fixture("baseline_444.jpg"), toPath: dir + "/photo.png")
        try FileManager.default.copyItem(atPath: Self.fixture("palette.png"), toPath: dir + "/palette.jpg")
        #expect(try ImageFile.read(dir + "/photo.png") == ImageFile.read(Self.fixture("baseline_444.jpg")))
        #expect(try ImageFile.read(dir + "/palette.jpg") == PNGFile.read(Self.fixture("palette.png")))
    }

    // MARK: PNG colour types

    @Test func pngGrayPaletteAnd16BitDecodeExactly() throws {
        let gray: [UInt8] = [0, 50, 128, 255, 17, 99, 200, 240]
        let expectedGray = gray.flatMap { [$0, $0, $0] }
        #expect(try ImageFile.read(Self.fixture("gray.png")).pixels == expectedGray)
        // 16-bit v·257 → 8-bit v (libpng's simplified API; no gAMA chunk, so no gamma change).
        #expect(try ImageFile.read(Self.fixture("gray16.png")).pixels == expectedGray)
        let palette: [[UInt8]] = [[255, 0, 0], [0, 128, 255], [10, 20, 30], [250, 250, 5]]
        let indices = [0, 1, 2, 3, 3, 2, 1, 0]
        #expect(try ImageFile.read(Self.fixture("palette.png")).pixels == indices.flatMap { palette[$0] })
    }

    /// Alpha compositing over a chosen background, in sRGB-encoded values: out = round((c·α + bg·(255 − α)) / 255).
    /// The 16-bit file holds the same colours as v·257 and must give the same pixels as the 8-bit one.
    @Test(arguments: ["rgba.png", "rgba16.png", "gray_alpha.png"])
    func alphaIsCompositedOverTheBackground(_ name: String) throws {
        let alphas: [Int] = [0, 64, 128, 255]
        let colours: [[Int]] = name == "gray_alpha.png" ? [[90, 90, 90], [200, 200, 200]] : [[200, 30, 90], [10, 220, 140]]
        var seen: [[UInt8]] = []
        for background in [BackgroundColor.white, .black, BackgroundColor(red: 0, green: 128, blue: 255)] {
            let image = try ImageFile.read(Self.fixture(name), background: background)
            #expect(image.width == 4 && image.height == 2)
            let bg = [Int(background.red), Int(background.green), Int(background.blue)]
            var expected: [UInt8] = []
            for y in 0..<2 {
                for x in 0..<4 {
                    for c in 0..<3 { expected.append(UInt8((colours[y][c] * alphas[x] + bg[c] * (255 - alphas[x]) + 127) / 255)) }
                }
            }
            #expect(image.pixels == expected, "\(name) over \(background)")
            seen.append(image.pixels)
        }
        #expect(seen[0] != seen[1], "white and black backgrounds give the same pixels")
    }

    @Test func backgroundParsing() throws {
        #expect(try BackgroundColor(parsing: "white") == .white)
        #expect(try BackgroundColor(parsing: "Black") == .black)
        #expect(try BackgroundColor(parsing: "124, 116,104") == BackgroundColor(red: 124, green: 116, blue: 104))
        for bad in ["", "red", "1,2", "1,2,3,4", "0,0,256", "-1,0,0", "a,b,c"] {
            #expect(throws: EngineError.self, "'\(bad)'") { try BackgroundColor(parsing: bad) }
        }
    }

    // MARK: bad files

    static func message(_ body: () throws -> RGBImage) -> String {
        do { _ = try body(); return "" } catch { return "\(error)" }
    }

    @Test func truncatedAndCorruptJPEGsFail() throws {
        let truncated = Self.message { try ImageFile.read(Self.fixture("bad_truncated.jpg")) }
        #expect(truncated.contains("bad_truncated.jpg") && truncated.contains("Premature end of JPEG file") && truncated.contains("re-export"), "\(truncated)")
        let corrupt = Self.message { try ImageFile.read(Self.fixture("bad_progressive_scan.jpg")) }
        #expect(corrupt.contains("bad_progressive_scan.jpg") && corrupt.contains("Invalid progressive parameters") && corrupt.contains("re-export"), "\(corrupt)")
        // Every prefix of a good progressive file fails with a message (never a crash, never a partial image).
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("progressive.jpg"))
        for cut in stride(from: 0, to: data.count - 2, by: 37) {
            #expect(throws: EngineError.self, "prefix of \(cut) bytes") { try ImageFile.read(data: data.prefix(cut), name: "cut.jpg") }
        }
    }

    @Test func decompressionBombIsRefusedFromTheHeader() throws {
        let start = Date()
        let message = Self.message { try ImageFile.read(Self.fixture("bad_huge.jpg")) }
        let seconds = Date().timeIntervalSince(start)
        #expect(message.contains("is 60000×60000 pixels") && message.contains("16384 pixels per side") && message.contains("downscale"), "\(message)")
        // 60000² RGB would be 10.8 GB to allocate and seconds to decode: refusing it takes a header read.
        // (The guarantee is the size check above, before allocation; the bound is loose for loaded machines and ASan.)
        #expect(seconds < 5, "took \(seconds) s")
        let info = try JPEGFile.info(data: Data(contentsOf: Self.fixtures.appendingPathComponent("bad_huge.jpg")), name: "huge")
        #expect(info.width == 60000 && info.height == 60000)
    }

    @Test func emptyTextAndOtherFormatsGiveOneClearMessage() throws {
        let dir = try Self.temporaryFolder()
        try Data().write(to: URL(fileURLWithPath: dir + "/empty.jpg"))
        try Data("these are my holiday photos\n".utf8).write(to: URL(fileURLWithPath: dir + "/notes.jpg"))
        try Data("GIF89a\u{1}\u{0}\u{1}\u{0}".utf8).write(to: URL(fileURLWithPath: dir + "/anim.png"))
        let empty = Self.message { try ImageFile.read(dir + "/empty.jpg") }
        #expect(empty.contains("empty.jpg") && empty.contains("the file is empty"), "\(empty)")
        let text = Self.message { try ImageFile.read(dir + "/notes.jpg") }
        #expect(text.contains("notes.jpg") && text.contains("not a JPEG or PNG file (it looks like text)") && text.contains("convert"), "\(text)")
        let gif = Self.message { try ImageFile.read(dir + "/anim.png") }
        #expect(gif.contains("it looks like GIF"), "\(gif)")
        let folder = Self.message { try ImageFile.read(dir) }
        #expect(folder.contains("is a folder") && folder.contains("--images"), "\(folder)")
        let missing = Self.message { try ImageFile.read(dir + "/nothere.jpg") }
        #expect(missing.contains("no such file"), "\(missing)")
    }

    // MARK: folders

    @Test func folderListingIsRecursiveSortedAndSkipsNonImages() throws {
        let dir = try Self.temporaryFolder()
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/b/sub", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/.hidden", withIntermediateDirectories: true)
        try fm.copyItem(atPath: Self.fixture("gray.jpg"), toPath: dir + "/b/sub/z.jpg")
        try fm.copyItem(atPath: Self.fixture("palette.png"), toPath: dir + "/b/a.png")
        try fm.copyItem(atPath: Self.fixture("cmyk.jpg"), toPath: dir + "/c.JPG")
        try fm.copyItem(atPath: Self.fixture("gray.png"), toPath: dir + "/A.png")
        try fm.copyItem(atPath: Self.fixture("gray.png"), toPath: dir + "/.hidden/x.png")
        try fm.copyItem(atPath: Self.fixture("gray.png"), toPath: dir + "/.dot.png")
        try Data("notes".utf8).write(to: URL(fileURLWithPath: dir + "/readme.txt"))
        try Data().write(to: URL(fileURLWithPath: dir + "/b/empty.jpg"))
        let listing = try ImageFolder.list(dir)
        #expect(listing.images == ["A.png", "b/a.png", "b/sub/z.jpg", "c.JPG"].map { dir + "/" + $0 })
        #expect(listing.skipped.map(\.path) == ["b/empty.jpg", "readme.txt"].map { dir + "/" + $0 })
        #expect(listing.skipped.map(\.reason) == ["the file is empty", "not a JPEG or PNG file (it looks like text)"])
        let flat = try ImageFolder.list(dir, recursive: false)
        #expect(flat.images == ["A.png", "c.JPG"].map { dir + "/" + $0 })
        // An empty folder, and one with only non-images, are errors.
        try fm.createDirectory(atPath: dir + "/none", withIntermediateDirectories: true)
        do { _ = try ImageFolder.list(dir + "/none"); Issue.record("an empty folder was accepted") } catch {
            #expect("\(error)".contains("has no JPEG or PNG image") && "\(error)".contains("holds no files"), "\(error)")
        }
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/none/x.txt"))
        do { _ = try ImageFolder.list(dir + "/none"); Issue.record("a folder of text was accepted") } catch {
            #expect("\(error)".contains("x.txt"), "\(error)")
        }
    }

    // MARK: batch classification (engine and CLI)

    /// Batches give the logits of one-at-a-time classification (the last batch is padded and trimmed).
    @Test func batchClassificationMatchesSingleImages() throws {
        let paths = ["baseline_420.jpg", "gray.jpg", "cmyk.jpg", "exif_6.jpg", "palette.png"].map { Self.fixture($0) }
        let single = try ModelLoader.load("random:resnet18", batch: 1, imageSize: 32)
        let batched = try ModelLoader.load("random:resnet18", batch: 2, imageSize: 32)
        let result = try BatchClassifier(model: batched, backend: CPUBackend()).classify(paths + [Self.fixture("bad_truncated.jpg")], top: 3)
        #expect(result.results.map(\.image) == paths)
        #expect(result.skipped.map(\.path) == [Self.fixture("bad_truncated.jpg")])
        #expect(result.skipped.first?.reason.hasPrefix("cannot decode image: Premature end of JPEG file") == true, "\(result.skipped)")
        for (path, r) in zip(paths, result.results) {
            let one = try classify(model: single, imagePath: path, backend: CPUBackend(), top: 3)
            let worst = zip(one.logits, r.logits).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst < 1e-4, "\(path): batched logits differ by \(worst)")
            #expect(r.top.map(\.index) == one.top.map(\.index))
        }
        // The images differ, so their logits must too (a batch that repeated one row would not).
        #expect(Set(result.results.map { $0.logits.prefix(8).map { Int(($0 * 1000).rounded()) } }).count == paths.count)
    }

    @Test func csvAndJSONFormats() throws {
        let scores = [ClassScore(index: 3, name: "tiger shark", probability: 0.5, logit: 2), ClassScore(index: 1, name: "a, \"b\"", probability: 0.25, logit: 1)]
        let r = BatchClassification(model: "m", device: "cpu",
                                    results: [Classification(model: "m", image: "x,y.jpg", device: "cpu", top: scores, logits: [0, 1, 0, 2])],
                                    skipped: [ImageFolder.Skipped(path: "bad.jpg", reason: "corrupt")])
        #expect(try r.formatted(.csv) == """
            image,class_1,name_1,probability_1,logit_1,class_2,name_2,probability_2,logit_2
            "x,y.jpg",3,tiger shark,0.500000,2.000000,1,"a, ""b\"\"",0.250000,1.000000

            """)
        #expect(try r.formatted(.text) == "x,y.jpg\ttiger shark 50.00% (class 3); a, \"b\" 25.00% (class 1)\n")
        let decoded = try JSONDecoder().decode(BatchClassification.self, from: Data(r.formatted(.json).utf8))
        #expect(decoded.results.first?.top.first?.name == "tiger shark" && decoded.skipped == r.skipped)
    }

    /// `amgpu classify --images DIR` with a corrupt file and a text file among good images: a line per good
    /// image, the bad ones listed on stderr, exit status 2, and the CSV written atomically with --output.
    @Test func classifyFolderCLI() throws {
        let dir = try Self.temporaryFolder()
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/photos/more", withIntermediateDirectories: true)
        for (from, to) in [("baseline_420.jpg", "a.jpg"), ("gray.jpg", "more/b.jpg"), ("rgba.png", "c.png"), ("bad_truncated.jpg", "broken.jpg")] {
            try fm.copyItem(atPath: Self.fixture(from), toPath: dir + "/photos/" + to)
        }
        try Data("notes\n".utf8).write(to: URL(fileURLWithPath: dir + "/photos/notes.txt"))
        let base = ["classify", "--model", "random:resnet18", "--size", "32", "--device", "cpu", "--top", "2", "--batch", "2"]
        let text = try CLITests.run(base + ["--images", dir + "/photos"])
        #expect(text.status == 2, "\(text.stderr)")
        let lines = text.stdout.split(separator: "\n").map(String.init)
        #expect(lines.map { $0.split(separator: "\t").first.map(String.init) ?? "" } == ["a.jpg", "c.png", "more/b.jpg"].map { dir + "/photos/" + $0 })
        #expect(lines.allSatisfy { $0.contains("% (class ") })
        #expect(text.stderr.contains("amgpu: skipped \(dir)/photos/broken.jpg: cannot decode image: Premature end of JPEG file"), "\(text.stderr)")
        // The path is printed once per skipped file, not repeated in its reason.
        #expect(text.stderr.components(separatedBy: "broken.jpg").count == 2, "\(text.stderr)")
        #expect(text.stderr.contains("amgpu: skipped \(dir)/photos/notes.txt: not a JPEG or PNG file (it looks like text)"), "\(text.stderr)")
        #expect(!text.stderr.contains("amgpu: error:"))

        let csvPath = dir + "/out.csv"
        let csv = try CLITests.run(base + ["--images", dir + "/photos", "--format", "csv", "--output", csvPath])
        #expect(csv.status == 2 && csv.stdout.isEmpty)
        let rows = try String(contentsOfFile: csvPath, encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 4 && rows[0].hasPrefix("image,class_1,name_1,probability_1,logit_1,class_2"))
        #expect(try fm.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }.isEmpty)

        // Repeated --image, all good: exit 0, JSON, and the same top classes as the folder run.
        let json = try CLITests.run(base + ["--image", dir + "/photos/a.jpg", "--image", dir + "/photos/c.png", "--format", "json"])
        #expect(json.status == 0, "\(json.stderr)")
        let decoded = try JSONDecoder().decode(BatchClassification.self, from: Data(json.stdout.utf8))
        #expect(decoded.results.count == 2 && decoded.skipped.isEmpty)
        #expect(decoded.results.first.map { lines[0].contains("(class \($0.top[0].index))") } == true)

        // One --image keeps the table output.
        let single = try CLITests.run(base + ["--image", dir + "/photos/a.jpg"])
        #expect(single.status == 0 && single.stdout.contains(" 1. ") && single.stdout.contains("logit"))
    }

    /// `amgpu image-stats FOLDER` takes the JPEG and PNG files directly in it (by their bytes), except its grid.png.
    @Test func imageStatsFolderReadsJPEG() throws {
        let dir = try Self.temporaryFolder()
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        for (from, to) in [("baseline_420.jpg", "a.jpg"), ("baseline_444.ref.png", "b.png"), ("exif_1.ref.png", "grid.png"), ("gray.jpg", "sub/c.jpg")] {
            try fm.copyItem(atPath: Self.fixture(from), toPath: dir + "/" + to)
        }
        try Data("notes\n".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        let run = try CLITests.run(["image-stats", dir, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        struct Entry: Decodable { var file: String }
        struct Output: Decodable { var images: [Entry] }
        let files = try JSONDecoder().decode(Output.self, from: Data(run.stdout.utf8)).images.map(\.file)
        #expect(files == [dir + "/a.jpg", dir + "/b.png"], "\(files)")
    }

    /// The JPEG fuzz target's committed inputs (Fuzz/seeds/jpeg, Fuzz/crashers/jpeg) through its entry point:
    /// the seeds decode, crashers are rejected with an EngineError, nothing traps. Also every single-byte
    /// corruption of a seed's first 600 bytes (headers and tables) decodes or fails cleanly.
    @Test func fuzzInputsNeverTrap() throws {
        let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")
        func files(_ kind: String) -> [URL] {
            ((try? FileManager.default.contentsOfDirectory(at: fuzz.appendingPathComponent(kind + "/jpeg"), includingPropertiesForKeys: nil)) ?? []).sorted { $0.path < $1.path }
        }
        let seeds = files("seeds")
        #expect(seeds.count >= 5)
        for url in seeds {
            let image = try ImageFile.read(data: Data(contentsOf: url), name: url.lastPathComponent)
            #expect(image.pixels.count == image.width * image.height * 3)
        }
        for url in files("crashers") {
            #expect(throws: EngineError.self) { try ImageFile.read(data: Data(contentsOf: url), name: url.lastPathComponent) }
        }
        var data = try Data(contentsOf: Self.fixtures.appendingPathComponent("progressive.jpg"))
        var failed = 0
        for i in stride(from: 2, to: min(600, data.count), by: 3) {
            let saved = data[i]
            data[i] = saved ^ 0x5A
            do {
                let image = try ImageFile.read(data: data, name: "flip.jpg")
                #expect(image.pixels.count == image.width * image.height * 3)
            } catch is EngineError { failed += 1 }
            data[i] = saved
        }
        #expect(failed > 0, "no corruption was detected at all")
    }
}
