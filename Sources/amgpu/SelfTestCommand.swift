import ArgumentParser
import GPUEngine

struct SelfTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Run a small network forward and backward on the chosen device and compare it with the CPU reference.")

    @OptionGroup var deviceOptions: DeviceOptions

    func run() throws {
        try runReportingErrors {
            let backend = try deviceOptions.makeBackend()
            let report = try runSelfTest(on: backend)
            print("selftest on \(report.backendName): forward max error \(report.maxForwardError), gradient max error \(report.maxGradientError): \(report.passed ? "ok" : "FAILED")")
            if !report.passed { throw ExitCode(1) }
        }
    }
}
