import ArgumentParser
import Foundation
import GPUEngine

@main
struct AMGPU: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amgpu",
        abstract: "Activation maximization and targeted adversarial examples for CNNs and ViTs, on any OpenCL device or the CPU.",
        version: "0.1.0",
        subcommands: [Visualize.self, Atlas.self, AtlasIndexCommand.self, Probe.self, ProbeMerge.self, ActivationAtlasCommand.self, Adversarial.self, Layers.self, Classify.self, Activations.self,
                      Devices.self, SelfTest.self, Bench.self, Tune.self, ImageStats.self, MontageCommand.self, RunTensor.self,
                      MacoSpectrumCommand.self])
}

/// Options shared by every command that runs a model.
struct DeviceOptions: ParsableArguments {
    @Option(name: .long, help: "Where to run: auto, cpu, opencl or opencl:N (default: $AMGPU_DEVICE or auto).",
            completion: .list(["auto", "cpu", "opencl", "opencl:0"]), transform: parseDevice)
    var device: DeviceSelection?

    /// The chosen device, else `$AMGPU_DEVICE`, else auto.
    func selection() throws -> DeviceSelection {
        if let device { return device }
        return try DeviceSelection.fromEnvironment()
    }

    func makeBackend() throws -> any Backend {
        let backend = try selection().makeBackend(notice: { printError($0) })
        // A corrupt or unreadable tuning file: the shipped defaults run, and the user is told once.
        if let cl = backend as? OpenCLBackend, let warning = cl.tuningWarning { printError("amgpu: \(warning)") }
        return backend
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write((message + "\n").data(using: .utf8) ?? Data())
}

/// The flag that sets each setting an engine message names.
func flag(for setting: SettingName) -> String {
    switch setting {
    case .learningRate: return "--lr"
    case .parameterization: return "--param"
    case .outputFolder: return "--out"
    case .layers: return "--layers"
    case .units: return "--units"
    case .shard: return "--shard"
    case .shardCount: return "--shard-count"
    case .top: return "--top"
    case .referencePhoto: return "--toward"
    case .warmStart: return "--no-warm-start"
    }
}

/// An engine message in the CLI's words: each setting it names becomes the flag that sets it.
func flagged(_ message: String) -> String { SettingName.replacingMentions(in: message, with: flag(for:)) }

/// An engine error thrown while a flag is parsed, with the flags named (for `transform:` closures).
struct FlaggedError: Error, CustomStringConvertible {
    var description: String
}

/// Runs an engine parser for a flag's value; its error message names flags.
func parsingFlag<T>(_ parse: () throws -> T) throws -> T {
    do { return try parse() } catch let error as EngineError { throw FlaggedError(description: flagged(error.description)) }
}

/// Turns engine errors into one clear line and a non-zero exit.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as EngineError {
        printError("amgpu: error: \(flagged(error.description))")
        throw ExitCode(1)
    } catch let error as CLError {
        printError("amgpu: error: \(error)")
        throw ExitCode(1)
    }
}
