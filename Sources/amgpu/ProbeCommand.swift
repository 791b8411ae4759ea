import ArgumentParser
import Foundation
import GPUEngine

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dataset examples: the images of a folder that excite each unit most, with boxes and statistics.",
        discussion: """
        Streams every JPEG/PNG under --images through the model in batches (one model load) and keeps, per unit of
        --layers, the --top images with the largest value (the maximum over a feature map's positions, or over a ViT
        layer's patch tokens), the position of that maximum and its receptive-field box, and statistics over the images.
        Writes OUT/probe.json and OUT/<layer>/<unit>.png (the top patches). --shard i/n (or Slurm array / Kubernetes
        Indexed Job variables) probes every n-th batch of the images into OUT/shards/ (all shards need the same --batch); `amgpu probe-merge OUT --out OUT` merges
        the shards exactly. A killed run (even kill -9) resumes from its last checkpoint when rerun. See docs/probe.md.
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var deviceOptions: DeviceOptions

    @Option(name: .long, help: "The folder of images (JPEG or PNG, searched recursively).")
    var images: String

    @Option(name: .long, help: "Layers to probe, comma-separated (see `amgpu layers`); 'output' for the logits.",
            transform: { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } })
    var layers: [String]

    @Option(name: .long, help: "Units of every layer, e.g. 0-15 or 3,7,9 (default: all units).", transform: parseUnitList)
    var units: [Int]?

    @Option(name: .long, help: "Images kept per unit.")
    var top: Int = 9

    @Option(name: .long, help: "Images per batch (one model load at this batch size).")
    var batch: Int = 16

    @Option(name: .long, help: "The output folder (shared by all shards).")
    var out: String

    @OptionGroup var sharding: ShardOptions

    @Option(name: .long, help: "Write a checkpoint every this many batches.")
    var checkpointEvery: Int = 8

    @Option(name: .long, help: "Side of each patch in the unit montages, in pixels.")
    var patchSize: Int = 64

    @OptionGroup var imageOptions: ImageOptions

    @Flag(name: .long, help: "No progress bar.")
    var quiet = false

    func validate() throws {
        guard top >= 1 else { throw ValidationError("--top must be at least 1, got \(top)") }
        guard batch >= 1, batch <= 4096 else { throw ValidationError("--batch must lie in 1…4096, got \(batch)") }
        guard checkpointEvery >= 1 else { throw ValidationError("--checkpoint-every must be at least 1, got \(checkpointEvery)") }
        guard patchSize >= 8, patchSize <= 512 else { throw ValidationError("--patch-size must lie in 8…512, got \(patchSize)") }
        guard !layers.isEmpty, layers.allSatisfy({ !$0.isEmpty }) else { throw ValidationError("--layers needs layer names, e.g. --layers blocks.3,output") }
    }

    func run() throws {
        try runReportingErrors {
            let slice = try sharding.slice()
            let folder = try ImageFolder.list(images)
            // Every shard loads the same batch size: shards hold whole batches of the listing.
            let model = try modelOptions.load(batch: max(1, min(batch, folder.images.count)))
            let mine = GPUEngine.Probe.shardImages(folder.images, shard: slice, batch: model.batchSize).count
            let backend = try deviceOptions.makeBackend()
            let request = ProbeRequest(layers: layers, units: units, top: top, shard: slice, checkpointEvery: checkpointEvery,
                                       patchSize: patchSize, background: imageOptions.backgroundColor())
            if !quiet {
                printError("probe: \(model.name) on \(backend.name), \(layers.count) layer(s); \(folder.images.count) images, shard \(slice) has \(mine); batch \(model.batchSize) → \(out)")
            }
            let bar = ProgressReporter(quiet: quiet, label: "probe", interval: 5)
            let summary = try GPUEngine.Probe.run(model: model, backend: backend, folder: folder, request: request, out: out) { bar.update($0) }
            bar.finish()
            reportSkipped(folder.skipped + summary.state.skipped)
            let s = summary.state
            var line = "probe: shard \(slice): \(s.read) image(s) read, \(s.skipped.count + (slice.index == 0 ? folder.skipped.count : 0)) skipped"
            if summary.resumedAt > 0 { line += ", resumed at \(summary.resumedAt) of \(s.shardImages)" }
            line += String(format: " in %.1f s", summary.seconds)
            print(line)
            if summary.result != nil {
                print("probe: wrote \((out as NSString).appendingPathComponent("probe.json")) and the top patches under \(out)/")
            } else {
                print("probe: state in \(summary.statePath); when all \(slice.count) shards are done: amgpu probe-merge \(out) --out \(out)")
            }
        }
    }
}

struct ProbeMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe-merge",
        abstract: "Merge the shards of `amgpu probe` exactly into probe.json and the top patches.",
        discussion: "Inputs: probe output folders (their shards/*.json) or shard state files. Every shard of the run must be there, finished, once.")

    @Argument(help: "Probe output folders or shard state files.")
    var inputs: [String]

    @Option(name: .long, help: "Where to write probe.json and the patches.")
    var out: String

    @Option(name: .long, help: "Side of each patch in the unit montages, in pixels.")
    var patchSize: Int = 64

    @OptionGroup var imageOptions: ImageOptions

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give the probe output folders (or shard files) to merge") }
        guard patchSize >= 8, patchSize <= 512 else { throw ValidationError("--patch-size must lie in 8…512, got \(patchSize)") }
    }

    func run() throws {
        try runReportingErrors {
            let result = try GPUEngine.Probe.merge(inputs: inputs)
            try GPUEngine.Probe.write(result, to: out, patchSize: patchSize, background: imageOptions.backgroundColor())
            print("probe-merge: \(result.shards) shard(s), \(result.images) image(s) → \((out as NSString).appendingPathComponent("probe.json"))")
        }
    }
}
