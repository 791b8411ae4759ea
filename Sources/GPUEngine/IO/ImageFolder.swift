import Foundation

/// The images under a folder, for batch classification.
public struct ImageFolder: Sendable, Equatable {
    /// A file that was not taken, and why.
    public struct Skipped: Sendable, Equatable, Codable {
        public var path: String
        public var reason: String
        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
    }

    /// Paths of the JPEG and PNG files (by their magic bytes), sorted by their path relative to the folder
    /// (byte order of the UTF-8 text), so the order is the same on every machine.
    public var images: [String]
    /// Regular files that are not JPEG or PNG, or cannot be opened; also sorted.
    public var skipped: [Skipped]

    /// Lists `path` (and its subfolders when `recursive`). Hidden files and folders (names starting
    /// with ".") are not visited; symbolic links to folders are not followed. Throws when `path` is not
    /// a folder or holds no JPEG or PNG file at all (naming what was skipped).
    public static func list(_ path: String, recursive: Bool = true) throws -> ImageFolder {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw EngineError.io("cannot read folder '\(path)': no such folder; check the path")
        }
        guard isDirectory.boolValue else {
            throw EngineError.invalidInput("'\(path)' is a file, not a folder; give it with --image instead of --images")
        }
        let root = URL(fileURLWithPath: path)
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey, .isDirectoryKey],
                                                          options: recursive ? [.skipsHiddenFiles] : [.skipsHiddenFiles, .skipsSubdirectoryDescendants]) else {
            throw EngineError.io("cannot read folder '\(path)': it cannot be listed (check its permissions)")
        }
        var relative: [String] = []
        let base = root.standardizedFileURL.path
        for case let url as URL in walker {
            let values = try? url.resourceValues(forKeys: [.isRegularFileKey])
            guard values?.isRegularFile == true else { continue }
            let full = url.standardizedFileURL.path
            relative.append(full.hasPrefix(base + "/") ? String(full.dropFirst(base.count + 1)) : url.lastPathComponent)
        }
        relative.sort { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        var folder = ImageFolder(images: [], skipped: [])
        for name in relative {
            let file = (path as NSString).appendingPathComponent(name)
            guard let handle = FileHandle(forReadingAtPath: file) else {
                folder.skipped.append(Skipped(path: file, reason: "cannot be opened (check its permissions)"))
                continue
            }
            let head = (try? handle.read(upToCount: 16)) ?? nil
            try? handle.close()
            switch ImageFormat.sniff(head ?? Data()) {
            case .png, .jpeg: folder.images.append(file)
            case .other(let kind):
                folder.skipped.append(Skipped(path: file, reason: (head ?? Data()).isEmpty ? "the file is empty" : "not a JPEG or PNG file (it looks like \(kind))"))
            }
        }
        guard !folder.images.isEmpty else {
            let seen = folder.skipped.isEmpty ? "it holds no files" : "it holds \(folder.skipped.count) other file\(folder.skipped.count == 1 ? "" : "s") (first: '\(folder.skipped[0].path)': \(folder.skipped[0].reason))"
            throw EngineError.invalidInput("folder '\(path)' has no JPEG or PNG image: \(seen); amgpu reads \(ImageFile.formats) files")
        }
        return folder
    }
}
