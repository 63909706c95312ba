#!/usr/bin/env python3
"""Writes the safetensors fixtures for FactorlabSafetensors' tests, with the official library.

Run from the repository root (needs torch and safetensors; CI does not, the outputs are committed):

    python3 Tools/reference/make_safetensors_fixtures.py

Outputs, in Tests/FactorlabSafetensorsTests/Fixtures/ (each a few KB):

  mixed.safetensors         F32, F16, BF16, F64, I64 and I32 tensors, a 0-d tensor, empty tensors and
                            __metadata__ with quotes, a backslash, a newline and non-ASCII text.
                            F16 holds every special bit pattern (signed zeros, the smallest and
                            largest subnormals, the largest finite, +-inf, quiet and signalling NaNs
                            with payloads), all 1024 positive subnormals and a sweep across all
                            65536 patterns; BF16 holds its own special patterns and rounded randoms.
  reference_f32.safetensors F32 tensors only, metadata {"format": "pt"}: the Swift writer must
                            produce these exact bytes from the same tensors.
  expected.json             For each file: metadata, and per tensor its dtype, shape and either
                            "float32_bits" (the uint32 bit patterns of torch's `.float()`, so NaN
                            payloads and signed zeros compare exactly) or "int64" values.

Checking a file written by the Swift side (manual step, done once when the writer changes):

    FACTORLAB_SAFETENSORS_EXPORT=/tmp/factorlab_swift_written.safetensors \\
        swift test -c release --filter FactorlabSafetensorsTests
    python3 Tools/reference/make_safetensors_fixtures.py --check /tmp/factorlab_swift_written.safetensors

The Swift test `testExportForPythonCheck` writes the `reference_f32` tensors plus metadata
{"format": "pt", "note": NOTE}; `--check` loads that file with `safetensors.torch.load_file`,
compares every value bit for bit, compares the metadata, and compares the bytes with what
`safetensors.torch.save` writes for the same tensors. Without `--check`, the script regenerates
the fixtures and then also checks /tmp/factorlab_swift_written.safetensors if it exists.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save, save_file

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                   "Tests", "FactorlabSafetensorsTests", "Fixtures"))
DEFAULT_SWIFT_FILE = "/tmp/factorlab_swift_written.safetensors"

# Metadata exercising JSON escapes; the Swift export test uses the same string.
NOTE = 'quote " backslash \\ newline \n tab \t caf\u00e9 \u2603'


def from_bits16(bits, dtype):
    """A 1-d torch tensor of `dtype` (float16 or bfloat16) from raw uint16 bit patterns."""
    raw = np.array(bits, dtype=np.uint16).view(np.int16)
    return torch.from_numpy(raw.copy()).view(dtype)


def float32_bits(t):
    """The uint32 bit patterns of torch's float32 conversion of `t`, row-major.

    For float16 and bfloat16 the conversion goes through torch's vectorized CPU path: its scalar
    path (used for tensor tails shorter than a vector) turns every float16 NaN into 0x7FFFFFFF,
    while the vectorized path, like x86 F16C and ARM FCVT, keeps the sign and payload and sets
    the quiet bit. Factorlab follows the hardware rule, so the tensor is tiled to a multiple of
    64 elements before converting, and both paths are checked to agree on everything but NaNs.
    """
    flat = t.contiguous().reshape(-1)
    n = flat.numel()
    if t.dtype in (torch.float16, torch.bfloat16) and n > 0:
        tiled = flat.repeat(64)  # 64 * n elements: a multiple of every vector width
        vector = tiled.float()[:n]
        scalar = torch.stack([flat[i].float() for i in range(n)])
        for i, (a, b) in enumerate(zip(vector.tolist(), scalar.tolist())):
            assert (a != a and b != b) or struct.pack("<f", a) == struct.pack("<f", b), (i, a, b)
        f = vector
    else:
        f = flat.float()
    return [int(v) & 0xFFFFFFFF for v in f.view(torch.int32).tolist()]


def describe(tensors, metadata):
    out = {"metadata": metadata or {}, "tensors": {}}
    for name, t in tensors.items():
        entry = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
        if t.dtype in (torch.int64, torch.int32):
            entry["int64"] = [int(v) for v in t.reshape(-1).tolist()]
        else:
            entry["float32_bits"] = float32_bits(t)
        out["tensors"][name] = entry
    return out


def mixed_tensors():
    f16_special = [
        0x0000, 0x8000,          # +0, -0
        0x0001, 0x8001,          # smallest subnormal, 2^-24, and its negative
        0x0002, 0x0155, 0x03FF,  # subnormals up to the largest, (1023/1024) * 2^-14
        0x0400, 0x8400,          # smallest normal 2^-14
        0x3C00, 0xBC00, 0x3555,  # 1, -1, ~1/3
        0x7BFF, 0xFBFF,          # +-65504, the largest finite
        0x7C00, 0xFC00,          # +-inf
        0x7E00, 0xFE00,          # quiet NaN, negative quiet NaN
        0x7C01, 0x7D55, 0x7FFF,  # signalling NaNs with payloads, all-ones NaN
    ]
    f16_subnormals = list(range(0x0001, 0x0400))
    f16_sweep = list(range(0, 0x10000, 61))
    bf16_special = [
        0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080,  # zeros, subnormals, smallest normal
        0x3F80, 0xBF80, 0x3EAB, 0x7F7F, 0xFF7F,          # 1, -1, ~1/3, +-largest finite
        0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0x7FC1,  # +-inf, quiet NaNs, signalling NaN, payload
    ]
    gen = torch.Generator().manual_seed(0)
    f32 = torch.tensor([[1.5, -0.0, 1e-40, float("inf")],
                        [float("nan"), -3.4028234663852886e38, 0.1, -2.5]], dtype=torch.float32)
    f32_bits = torch.tensor([0x7FC00001, 0xFF800001, 0x00000001, 0x80000000],
                            dtype=torch.int64).to(torch.int32).view(torch.float32)
    f64 = torch.tensor([1.0 / 3.0, 1e-320, 1e300, -0.0, float("nan"), -float("inf"),
                        3.4028235677973366e38,   # rounds to inf in float32
                        3.4028235677973362e38,   # rounds to the largest finite float32
                        1.0000000596046448,      # a tie: rounds to even (1.0)
                        1.0000001788139343],     # a tie: rounds to even (1.0000002)
                       dtype=torch.float64)
    return {
        "f32_matrix": f32,
        "f32_raw_bits": f32_bits,
        "f32_scalar": torch.tensor(3.25, dtype=torch.float32),
        "f32_empty": torch.zeros(0, 3, dtype=torch.float32),
        "f16_special": from_bits16(f16_special, torch.float16),
        "f16_subnormals": from_bits16(f16_subnormals, torch.float16).reshape(31, 33),
        "f16_sweep": from_bits16(f16_sweep, torch.float16),
        "f16_empty": torch.zeros(0, dtype=torch.float16),
        "bf16_special": from_bits16(bf16_special, torch.bfloat16),
        "bf16_random": (torch.randn(4, 5, generator=gen) * 3).to(torch.bfloat16),
        "f64_values": f64,
        "i64_ids": torch.tensor([0, -1, 1 << 40, 50256], dtype=torch.int64),
        "i32_ids": torch.tensor([[7, -8, 2147483647]], dtype=torch.int32),
    }


MIXED_METADATA = {"format": "pt", "note": NOTE}


def reference_f32_tensors():
    """The tensors both Python and Swift write; the bytes must agree."""
    return {
        "wte": torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7 - 0.5,
        "ln.bias": torch.tensor([-0.0, 1e-42, 2.5, -1e30], dtype=torch.float32),
        "a.scalar": torch.tensor(-7.0, dtype=torch.float32),
        "z_empty": torch.zeros(0, 2, dtype=torch.float32),
        "h.0.attn": torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float32),
    }


def generate():
    os.makedirs(OUT, exist_ok=True)
    expected = {}

    mixed = mixed_tensors()
    path = os.path.join(OUT, "mixed.safetensors")
    save_file(mixed, path, metadata=MIXED_METADATA)
    expected["mixed.safetensors"] = describe(load_file(path), MIXED_METADATA)

    ref = reference_f32_tensors()
    path = os.path.join(OUT, "reference_f32.safetensors")
    save_file(ref, path, metadata={"format": "pt"})
    expected["reference_f32.safetensors"] = describe(load_file(path), {"format": "pt"})

    path = os.path.join(OUT, "expected.json")
    with open(path, "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    for name in sorted(os.listdir(OUT)):
        size = os.path.getsize(os.path.join(OUT, name))
        assert size < 100_000, f"{name} is {size} bytes; fixtures must stay well under 100 KB"
        print(f"wrote {os.path.join(OUT, name)} ({size} bytes)")


def check_swift_file(path):
    """Loads a file written by the Swift test with the official loader and compares it."""
    loaded = load_file(path)
    ref = reference_f32_tensors()
    assert sorted(loaded) == sorted(ref), f"tensor names differ: {sorted(loaded)} vs {sorted(ref)}"
    for name, t in ref.items():
        got = loaded[name]
        assert got.dtype == torch.float32, f"{name}: dtype {got.dtype}"
        assert list(got.shape) == list(t.shape), f"{name}: shape {list(got.shape)} vs {list(t.shape)}"
        assert float32_bits(got) == float32_bits(t), f"{name}: values differ"
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata()
    assert metadata == {"format": "pt", "note": NOTE}, f"metadata differs: {metadata!r}"

    # Same tensors written by the reference: identical header layout and data (the metadata
    # keys come out in HashMap order in Python, so compare the data section and the layout).
    with open(path, "rb") as f:
        swift_bytes = f.read()
    n = struct.unpack("<Q", swift_bytes[:8])[0]
    assert n % 8 == 0, f"header length {n} is not a multiple of 8"
    ref_bytes = save(ref, metadata={"format": "pt", "note": NOTE})
    n_ref = struct.unpack("<Q", ref_bytes[:8])[0]
    assert n == n_ref, f"header lengths differ: {n} vs {n_ref}"
    assert swift_bytes[8 + n:] == ref_bytes[8 + n_ref:], "data sections differ"
    header = json.loads(swift_bytes[8:8 + n])
    ref_header = json.loads(ref_bytes[8:8 + n_ref])
    assert header == ref_header, f"headers differ:\n{header}\n{ref_header}"
    assert list(header)[1:] == list(ref_header)[1:], "tensor entries are in a different order"
    print(f"OK: {path} loads with safetensors.torch.load_file and matches the reference "
          f"({len(loaded)} tensors, {len(swift_bytes)} bytes)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check_swift_file(sys.argv[2])
    elif len(sys.argv) == 1:
        generate()
        if os.path.exists(DEFAULT_SWIFT_FILE):
            check_swift_file(DEFAULT_SWIFT_FILE)
        else:
            print(f"(no {DEFAULT_SWIFT_FILE}; see the docstring to check a Swift-written file)")
    else:
        sys.exit(f"usage: {sys.argv[0]} [--check FILE.safetensors]")
