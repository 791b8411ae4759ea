import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How much CPU other processes take while a benchmark runs (Linux, from /proc): over an interval,
/// foreign cores = (busy jiffies of the whole machine, /proc/stat's first line: user+nice+system+irq+
/// softirq+steal) − (this process's utime+stime+cutime+cstime, /proc/self/stat), divided by the clock
/// ticks per second and the interval's length. Resolution: one tick (10 ms) per interval, so a sample
/// should last ≥ 0.3 s for a load of 0.25 core to be told from zero (`Benchmark` groups short calls).
public struct CPUSnapshot: Sendable {
    var machineBusy: UInt64
    var own: UInt64
    var nanoseconds: UInt64

    /// Now, or nil where /proc cannot be read (not Linux): then no load is known and nothing waits.
    public static func now() -> CPUSnapshot? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let first = stat.split(separator: "\n").first,
              let mine = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = mine.lastIndex(of: ")") else { return nil }
        let v = first.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard v.count >= 8 else { return nil }
        let busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
        // After "comm)": state is field 3; utime, stime, cutime, cstime are fields 14–17.
        let fields = mine[mine.index(after: close)...].split(separator: " ")
        guard fields.count >= 15 else { return nil }
        let own = fields[11...14].compactMap { UInt64($0) }.reduce(0, +)
        return CPUSnapshot(machineBusy: busy, own: own, nanoseconds: DispatchTime.now().uptimeNanoseconds)
    }

    /// Cores other processes used on average from `self` to `later` (≥ 0).
    public func foreignCores(until later: CPUSnapshot) -> Double {
        let seconds = Double(later.nanoseconds &- nanoseconds) / 1e9
        let foreign = Double(Int64(bitPattern: later.machineBusy &- machineBusy) - Int64(bitPattern: later.own &- own))
        return max(0, foreign / QuietMachine.ticksPerSecond / max(seconds, 1e-9))
    }
}

public enum QuietMachine {
    static let ticksPerSecond: Double = {
        #if canImport(Glibc)
        let hz = sysconf(Int32(_SC_CLK_TCK))
        return hz > 0 ? Double(hz) : 100
        #else
        return 100
        #endif
    }()

    /// Other processes' load below this many cores counts as quiet (a quarter core).
    public static let threshold = 0.25

    /// Waits until other processes used < `threshold` cores over a `window`-second interval, or until
    /// `maxWait` seconds passed. Returns the seconds waited and the last interval's foreign load (nil
    /// without /proc, when it returns at once).
    @discardableResult
    public static func wait(threshold: Double = threshold, window: Double = 2, maxWait: Double = 300,
                            log: (String) -> Void = { _ in }) -> (waited: Double, load: Double?) {
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        while true {
            guard let a = CPUSnapshot.now() else { return (0, nil) }
            Thread.sleep(forTimeInterval: window)
            guard let b = CPUSnapshot.now() else { return (elapsed(), nil) }
            let load = a.foreignCores(until: b)
            if load < threshold || elapsed() >= maxWait {
                if elapsed() > window + 0.5 {
                    log(String(format: "[quiet] waited %.0f s for a quiet machine (other processes: %.2f cores%@)",
                               elapsed(), load, load < threshold ? "" : "; gave up waiting"))
                }
                return (elapsed(), load)
            }
        }
    }
}
