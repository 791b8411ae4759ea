import PackagePlugin

/// Build-tool plugin: embeds every `.cl` file of the target into one generated Swift file,
/// `KernelSources+Embedded.swift`, as raw string literals. Editing a `.cl` file rebuilds it.
@main
struct EmbedKernels: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let sourceTarget = target as? SourceModuleTarget else { return [] }
        let kernels = sourceTarget.sourceFiles(withSuffix: ".cl").map(\.url)
            .sorted { $0.path < $1.path }
        let output = context.pluginWorkDirectoryURL.appending(path: "KernelSources+Embedded.swift")
        return [.buildCommand(
            displayName: "Embedding \(kernels.count) OpenCL kernel files",
            executable: try context.tool(named: "EmbedKernelsTool").url,
            arguments: [output.path] + kernels.map(\.path),
            inputFiles: kernels,
            outputFiles: [output])]
    }
}
