// swift-tools-version:6.0
// libFuzzer targets for amgpu's file readers. Built only by `scripts/fuzz`, which compiles every
// module with `-sanitize=address -sanitize-coverage=edge,trace-cmp,inline-8bit-counters` and links
// libFuzzer's no-main archive, whose driver only these executables call (FuzzDriver); `-sanitize=fuzzer`
// would also hand libFuzzer's `main` to the EmbedKernels build tool and clash with SwiftPM's `main`.
// The main package's `swift build`/`swift test` never see this package.
// `amgpu` is a symbolic link to the repository root, so the dependency's identity is `amgpu`
// whatever the checkout's folder is called.
import PackageDescription

let package = Package(
    name: "amgpu-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(path: "amgpu")],
    targets: [.target(name: "FuzzDriver", path: "Sources/FuzzDriver")] + ["FuzzONNX", "FuzzSafetensors", "FuzzPNG", "FuzzJPEG"].map { name in
        .executableTarget(name: name, dependencies: ["FuzzDriver", .product(name: "GPUEngine", package: "amgpu")],
                          path: "Sources/\(name)")
    },
    swiftLanguageModes: [.v6]
)
