// swift-tools-version:5.9
// Fuzz targets for Factorlab's readers of untrusted files (libFuzzer, through the toolchain's
// -sanitize=fuzzer). A package of its own, so that the main package never links libFuzzer.
// Build and run with Tools/fuzz/run.sh (see Tools/fuzz/README.md).
import PackageDescription

let package = Package(
    name: "FactorlabFuzz",
    dependencies: [.package(name: "Factorlab", path: "../..")],
    targets: [
        .executableTarget(name: "factorlab-fuzz", dependencies: [.product(name: "Factorlab", package: "Factorlab")],
                          path: "Sources/factorlab-fuzz"),
    ]
)
