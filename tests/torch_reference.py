#!/usr/bin/python3
"""PyTorch reference fixtures for the C forward pass (tests/test_torch_reference.c).

For every architecture JSON in config/arch/*.json this builds the equivalent
PyTorch model generically from the JSON (see nn/ARCH.md), fills it with
seeded random weights and non-trivial BatchNorm statistics, runs a batch of
random 48x48 uint8 images through it in eval mode (float64) and writes
tests/fixtures/<arch>.ref:

    char     magic[4] = "EREF"
    int32    version  = 1
    int32    n_params
    float32  params[n_params]          our layout (nn/ARCH.md)
    int32    batch
    uint8    pixels[batch*size*size]   row-major, one channel
    int32    n_classes
    float32  logits[batch*n_classes]
    float32  probs[batch*n_classes]

All little-endian. Run from the project root with Debian's torch:

    /usr/bin/python3 tests/torch_reference.py [--check] [arch.json ...]

--check regenerates in memory and compares with the committed fixtures
instead of writing them. bench/torch_bench.py imports build_model() from here.
"""
import argparse
import glob
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as F

MAGIC = b"EREF"
VERSION = 1
BATCH = 4
SEED = 20240601
EXPECTED_PARAMS = {"seed": 1315335}


# ---- model construction ---------------------------------------------------

class Pad(tnn.Module):
    """Explicit zero padding (left, right, top, bottom) as F.pad takes it."""

    def __init__(self, before: int, after: int):
        super().__init__()
        self.before = before
        self.after = after

    def forward(self, x):
        return F.pad(x, (self.before, self.after, self.before, self.after))


class FlattenNHWC(tnn.Module):
    """Flatten in H,W,C order, as the C engine's NHWC tensors do."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


class GlobalAvgPool(tnn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


def same_padding(k):
    """(before, after) for 'same' with stride 1: (k-1)//2 before, rest after."""
    before = (k - 1) // 2
    return before, k - 1 - before


def conv_layer(spec, c_in):
    k = int(spec["kernel"])
    padding = spec.get("padding", "valid")
    if padding not in ("same", "valid"):
        raise ValueError("conv padding must be 'same' or 'valid', got %r" % padding)
    if int(spec.get("stride", 1)) != 1:
        raise ValueError("only stride 1 is supported")
    mods = []
    if padding == "same" and k > 1:
        mods.append(Pad(*same_padding(k)))
    mods.append(tnn.Conv2d(c_in, int(spec["filters"]), k, bias=True))
    return mods


class Shape:
    """Running (C, H, W) or (features,) shape while walking the layers."""

    def __init__(self, c, h, w):
        self.c, self.h, self.w, self.flat = c, h, w, None


def step_layer(spec, shape):
    """The torch modules for one JSON layer and the shape after it; also
    returns the layer's forward MACs (conv and dense only)."""
    t = spec["type"]
    if t == "conv":
        if shape.flat is not None:
            raise ValueError("conv after flatten/gap")
        mods = conv_layer(spec, shape.c)
        k, o = int(spec["kernel"]), int(spec["filters"])
        if spec.get("padding", "valid") == "valid":
            shape.h, shape.w = shape.h - k + 1, shape.w - k + 1
        macs = shape.h * shape.w * k * k * shape.c * o
        shape.c = o
        return mods, macs
    if t == "batchnorm":
        n = shape.c if shape.flat is None else shape.flat
        bn = tnn.BatchNorm2d if shape.flat is None else tnn.BatchNorm1d
        return [bn(n, eps=float(spec.get("eps", 1e-5)),
                   momentum=float(spec.get("momentum", 0.1)))], 0
    if t == "relu":
        return [tnn.ReLU()], 0
    if t == "elu":
        return [tnn.ELU(alpha=1.0)], 0
    if t == "maxpool":
        shape.h, shape.w = shape.h // 2, shape.w // 2
        return [tnn.MaxPool2d(2, 2)], 0
    if t == "dropout":
        return [tnn.Dropout(float(spec.get("rate", 0.5)))], 0
    if t == "flatten":
        if shape.flat is None:
            shape.flat = shape.c * shape.h * shape.w
        return [FlattenNHWC()], 0
    if t == "gap":
        shape.flat = shape.c
        return [GlobalAvgPool()], 0
    if t == "dense":
        if shape.flat is None:
            raise ValueError("dense needs flatten or gap before it")
        n_in, units = shape.flat, int(spec["units"])
        shape.flat = units
        return [tnn.Linear(n_in, units)], n_in * units
    raise ValueError("unknown layer type %r" % t)


def build_model(arch):
    """torch.nn.Sequential equivalent of an architecture dict, plus its
    forward FLOPs per image (2 per MAC of conv and dense layers)."""
    inp = arch["input"]
    shape = Shape(int(inp.get("channels", 1)), int(inp["size"]), int(inp["size"]))
    mods, macs = [], 0
    for spec in arch["layers"]:
        m, n = step_layer(spec, shape)
        mods.extend(m)
        macs += n
    return tnn.Sequential(*mods), 2 * macs


def normalize(arch, pixels_u8):
    """(pixel*scale - mean)/std as an NCHW float tensor (dtype of torch default)."""
    inp = arch["input"]
    x = pixels_u8.to(torch.get_default_dtype())
    x = (x * float(inp.get("scale", 1.0)) - float(inp.get("mean", 0.0))) / float(inp.get("std", 1.0))
    size = int(inp["size"])
    return x.reshape(-1, int(inp.get("channels", 1)), size, size)


# ---- deterministic non-trivial parameters ---------------------------------

def init_params(model, gen):
    """He-normal conv/dense weights, small random biases, random BN affine and
    running statistics (so that a wrong BN formula or order is visible)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (tnn.Conv2d, tnn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in))
                m.bias.copy_((torch.rand(m.bias.shape, generator=gen) - 0.5) * 0.2)
            elif isinstance(m, (tnn.BatchNorm1d, tnn.BatchNorm2d)):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_((torch.rand(n, generator=gen) - 0.5) * 0.4)
                m.running_mean.copy_((torch.rand(n, generator=gen) - 0.5) * 0.4)
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))


def our_params(model):
    """All parameters as one float array in nn/ARCH.md order."""
    parts = []
    for m in model.modules():
        if isinstance(m, tnn.Conv2d):
            parts += [m.weight.detach().permute(0, 2, 3, 1).reshape(-1), m.bias.detach()]
        elif isinstance(m, (tnn.BatchNorm1d, tnn.BatchNorm2d)):
            parts += [m.weight.detach(), m.bias.detach(), m.running_mean, m.running_var]
        elif isinstance(m, tnn.Linear):
            # The model flattens NHWC, so Linear's [out][in] is our layout as is.
            parts += [m.weight.detach().reshape(-1), m.bias.detach()]
    return torch.cat([p.reshape(-1) for p in parts])


def count_params(arch):
    """Independent count straight from the JSON (BN counts 4 per channel)."""
    inp = arch["input"]
    c, h, flat, total = int(inp.get("channels", 1)), int(inp["size"]), None, 0
    for spec in arch["layers"]:
        t = spec["type"]
        if t == "conv":
            k, o = int(spec["kernel"]), int(spec["filters"])
            h = h if spec.get("padding", "valid") == "same" else h - k + 1
            total += k * k * c * o + o
            c = o
        elif t == "batchnorm":
            total += 4 * (c if flat is None else flat)
        elif t == "maxpool":
            h //= 2
        elif t == "flatten":
            flat = c * h * h if flat is None else flat
        elif t == "gap":
            flat = c
        elif t == "dense":
            total += flat * int(spec["units"]) + int(spec["units"])
            flat = int(spec["units"])
    return total


# ---- fixture --------------------------------------------------------------

def make_reference(arch, seed=SEED, batch=BATCH):
    """(params float32, pixels uint8, logits float32, probs float32, flops,
    max |float32 - float64| of the logits) for one architecture."""
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model, flops = build_model(arch)
    init_params(model, gen)
    model.eval()
    size = int(arch["input"]["size"])
    pixels = torch.randint(0, 256, (batch, size, size), generator=gen, dtype=torch.uint8)
    # Round the parameters through float32 first so the reference is the exact
    # float64 result for the float32 parameters the C engine receives.
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.float().double())
        logits = model(normalize(arch, pixels))
        probs = torch.softmax(logits, dim=1)
        m32 = model.float()
        logits32 = m32(normalize(arch, pixels).float()).double()
        model.double()
    torch.set_default_dtype(torch.float32)
    f32_err = (logits32 - logits).abs().max().item()
    return (our_params(model).float().numpy(), pixels.numpy(), logits.float().numpy(),
            probs.float().numpy(), flops, f32_err)


def encode(params, pixels, logits, probs):
    n_classes = logits.shape[1]
    out = [MAGIC, struct.pack("<ii", VERSION, params.size), params.astype("<f4").tobytes(),
           struct.pack("<i", pixels.shape[0]), pixels.astype(np.uint8).tobytes(),
           struct.pack("<i", n_classes), logits.astype("<f4").tobytes(),
           probs.astype("<f4").tobytes()]
    return b"".join(out)


def decode(blob, side):
    """The arrays of a fixture file (inverse of encode) for side x side images."""
    if blob[:4] != MAGIC or struct.unpack_from("<i", blob, 4)[0] != VERSION:
        raise ValueError("not an EREF v1 file")
    (n,) = struct.unpack_from("<i", blob, 8)
    params = np.frombuffer(blob, "<f4", n, 12)
    off = 12 + 4 * n
    (batch,) = struct.unpack_from("<i", blob, off)
    pixels = np.frombuffer(blob, np.uint8, batch * side * side, off + 4)
    off += 4 + pixels.size
    (k,) = struct.unpack_from("<i", blob, off)
    logits = np.frombuffer(blob, "<f4", batch * k, off + 4).reshape(batch, k)
    probs = np.frombuffer(blob, "<f4", batch * k, off + 4 + 4 * batch * k).reshape(batch, k)
    if off + 4 + 8 * batch * k != len(blob):
        raise ValueError("trailing or missing bytes")
    return params, pixels, logits, probs


def same_fixture(path, params, pixels, logits, probs):
    """Inputs bit-identical, outputs equal up to float64 summation order."""
    try:
        with open(path, "rb") as f:
            old = decode(f.read(), pixels.shape[-1])
    except (OSError, ValueError, struct.error) as e:
        print("%s: %s" % (path, e), file=sys.stderr)
        return False
    return (np.array_equal(old[0], params) and np.array_equal(old[1], pixels.reshape(-1))
            and np.allclose(old[2], logits, rtol=1e-6, atol=1e-6)
            and np.allclose(old[3], probs, rtol=1e-6, atol=1e-6))


def process(path, outdir, check):
    with open(path) as f:
        arch = json.load(f)
    name = arch.get("name") or os.path.splitext(os.path.basename(path))[0]
    params, pixels, logits, probs, flops, f32_err = make_reference(arch)
    n_json = count_params(arch)
    ok = params.size == n_json and EXPECTED_PARAMS.get(name, n_json) == n_json
    print("%s: params %d (count from JSON %d%s), forward FLOPs/image %d, "
          "logits range [%.3f, %.3f], max prob %.3f, float32-vs-float64 logit err %.2e"
          % (name, params.size, n_json,
             ", expected %d" % EXPECTED_PARAMS[name] if name in EXPECTED_PARAMS else "",
             flops, logits.min(), logits.max(), probs.max(), f32_err))
    if not ok:
        print("%s: PARAMETER COUNT MISMATCH" % name, file=sys.stderr)
        return False
    blob = encode(params, pixels, logits, probs)
    dest = os.path.join(outdir, name + ".ref")
    if check:
        same = same_fixture(dest, params, pixels, logits, probs)
        print("%s: %s %s" % (name, dest, "matches" if same else "DIFFERS (regenerate it)"))
        return same
    os.makedirs(outdir, exist_ok=True)
    with open(dest + ".tmp", "wb") as f:
        f.write(blob)
    os.replace(dest + ".tmp", dest)
    print("%s: wrote %s (%d bytes)" % (name, dest, len(blob)))
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("arch", nargs="*", help="architecture JSON files (default config/arch/*.json)")
    ap.add_argument("--out", default="tests/fixtures", help="fixture directory")
    ap.add_argument("--check", action="store_true", help="compare with existing fixtures, write nothing")
    args = ap.parse_args()
    torch.set_num_threads(1)  # deterministic reductions
    paths = args.arch or sorted(glob.glob("config/arch/*.json"))
    if not paths:
        sys.exit("no architecture JSON found (run from the project root)")
    ok = all([process(p, args.out, args.check) for p in paths])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
