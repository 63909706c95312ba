import FactorlabTensor
import XCTest

/// The executable's choice of OPENBLAS_CORETYPE when OpenBLAS falls back to pre-AVX2 kernels.
final class BLASCoreTypeTests: XCTestCase {
    /// The flags line of a Sapphire Rapids Xeon (shortened), which OpenBLAS 0.3.21 took for a Prescott.
    let sapphireRapids = """
    processor\t: 0
    model name\t: Intel(R) Xeon(R) Processor
    flags\t\t: fpu sse2 ssse3 fma sse4_1 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_fp16
    bugs\t\t: spectre_v1

    processor\t: 1
    flags\t\t: fpu sse2
    """

    func testFlagsAreReadFromTheFirstFlagsLine() {
        let flags = BLAS.cpuFlags(cpuinfo: sapphireRapids)
        XCTAssertTrue(flags.isSuperset(of: ["fma", "avx2", "avx512f", "avx512_bf16"]))
        XCTAssertFalse(flags.contains("spectre_v1"))
        XCTAssertEqual(BLAS.cpuFlags(cpuinfo: "processor\t: 0\nmodel name\t: x\n"), [])
    }

    func testFallbackIsOverriddenOnlyWhereTheCPUAllowsBetter() {
        let spr = BLAS.cpuFlags(cpuinfo: sapphireRapids)
        XCTAssertEqual(BLAS.betterCoreType(loaded: "Prescott", cpuFlags: spr), "Cooperlake")
        var skx = spr
        skx.remove("avx512_bf16")
        XCTAssertEqual(BLAS.betterCoreType(loaded: "Prescott", cpuFlags: skx), "SkylakeX")
        XCTAssertEqual(BLAS.betterCoreType(loaded: "Sandybridge", cpuFlags: ["avx", "avx2", "fma"]), "Haswell")
        // AVX-512 without VL is not enough for the SkylakeX kernels; AVX2 without FMA is not Haswell.
        XCTAssertEqual(BLAS.betterCoreType(loaded: "Prescott", cpuFlags: ["avx512f", "avx2", "fma"]), "Haswell")
        XCTAssertNil(BLAS.betterCoreType(loaded: "Prescott", cpuFlags: ["sse3", "avx", "avx2"]))
        // A family OpenBLAS chose for a CPU it knows stands, whatever the flags.
        XCTAssertNil(BLAS.betterCoreType(loaded: "Haswell", cpuFlags: spr))
        XCTAssertNil(BLAS.betterCoreType(loaded: "Zen", cpuFlags: spr))
        XCTAssertNil(BLAS.betterCoreType(loaded: "SkylakeX", cpuFlags: spr))
    }

    func testLoadedCoreNameIsReported() {
        XCTAssertFalse(BLAS.coreName.isEmpty)
        XCTAssertTrue(BLAS.configuration.contains(BLAS.coreName), "\(BLAS.configuration) vs \(BLAS.coreName)")
    }
}
