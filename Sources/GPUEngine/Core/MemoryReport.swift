import Foundation

/// Process memory readings for long-run checks (`amgpu visualize --report-memory`, scripts/soak).
public enum MemoryReport {
    /// Resident set size in bytes: the second field of /proc/self/statm (pages) × the page size;
    /// nil where /proc is absent (macOS).
    public static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// One line: "memory: step S rss_kib N cl_buffers M cl_bytes B".
    public static func line(step: Int) -> String {
        "memory: step \(step) rss_kib \((residentBytes() ?? 0) / 1024) cl_buffers \(CLBuffer.live) cl_bytes \(CLBuffer.liveBytes)"
    }
}
