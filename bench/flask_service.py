#!/usr/bin/python3
"""A minimal Flask + PyTorch emotion service: the baseline of bench/service.sh.

    EMOTIOND_FLASK_MODEL=build/bench/vgg.emod \\
      gunicorn --workers 2 --bind 127.0.0.1:8081 --pythonpath bench flask_service:app
    /usr/bin/python3 bench/flask_service.py --model FILE [--port 8081]   # Flask's dev server
    /usr/bin/python3 bench/flask_service.py --model FILE --pick-variant  # fastest variant

POST /predict takes a PNG or JPEG as the raw body (or multipart field "image"),
decodes it with PIL, converts it to grayscale and resizes it to the model's
input (48x48, area averaging, as emotiond does), and answers JSON shaped like
emotiond's: {"emotion", "confidence", "probabilities": {...}, "model": {...},
"elapsed_ms"}. GET /healthz answers {"status": "ok"}. No torchvision.

The model (EMOTIOND_FLASK_MODEL or --model) is either an emotiond model file
(.emod: architecture, classes and weights are loaded, so both services answer
the same probabilities) or an architecture JSON (config/arch/*.json, random
weights). The network is built by tests/torch_reference.py's build_model, the
same generic builder bench/torch_bench.py uses; the predictor (uint8 pixels ->
normalisation -> network -> softmax) is the one torch_bench.py measures.

Each process (gunicorn worker) uses EMOTIOND_FLASK_THREADS torch/OpenBLAS
threads (default 1, like each emotiond worker) and serves the fastest of eager,
TorchScript and TorchScript on channels_last: EMOTIOND_FLASK_VARIANT names one,
or "auto" (the default) times them at start-up on batch-1 calls in each
process. bench/service.sh runs --pick-variant once (1 s per variant) and gives
every worker its answer, so both workers serve the same variant. Each process
logs its choice to stderr as a "flask_service: pid ... variant ..." line, with
the OpenBLAS kernel set and OPENBLAS_* variables it sees.
The OpenBLAS and malloc environment is whatever the caller gives it:
bench/service.sh sets it exactly as for emotiond (see bench/README.md).
"""
import base64
import binascii
import ctypes
import io
import json
import os
import statistics
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as tnn
from flask import Flask, jsonify, request
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from torch_reference import build_model  # noqa: E402  (the builder torch_bench.py uses)

VARIANTS = ("eager", "torchscript", "torchscript+channels_last")
DEFAULT_CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


# ---- model --------------------------------------------------------------------

class Predictor(tnn.Module):
    """uint8 NCHW pixels -> class probabilities, like nn_predict_u8 (and
    bench/torch_bench.py's Predictor)."""

    def __init__(self, net, scale: float, mean: float, std: float):
        super().__init__()
        self.net, self.scale, self.mean, self.std = net, scale, mean, std

    def forward(self, pixels):
        x = (pixels.float() * self.scale - self.mean) / self.std
        return torch.softmax(self.net(x), dim=1)


def read_emod(path):
    """(header dict, float32 params) of an emotiond model file (format in
    nn/model_file.h: "EMOD", u32 version, u64 header length, JSON header,
    float32 params, extras, u32 CRC-32 of everything before it)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 20 or data[:4] != b"EMOD":
        raise ValueError("%s: not an emotiond model file" % path)
    version, hlen = struct.unpack_from("<IQ", data, 4)
    if version != 1 or 16 + hlen > len(data) - 4:
        raise ValueError("%s: unsupported version %d or truncated header" % (path, version))
    if zlib.crc32(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
        raise ValueError("%s: CRC mismatch (corrupt file)" % path)
    header = json.loads(data[16:16 + hlen])
    n = int(header["params"])
    if 16 + hlen + 4 * n > len(data) - 4:
        raise ValueError("%s: truncated parameters" % path)
    params = np.frombuffer(data, dtype="<f4", count=n, offset=16 + hlen)
    return header, params


def load_our_params(net, params):
    """The inverse of tests/torch_reference.py's our_params: our one array
    (nn/ARCH.md order; conv weights O,KH,KW,I; NHWC flatten, so dense weights
    are [out][in] as is) into the torch modules."""
    flat = torch.from_numpy(params.astype(np.float32))
    pos = 0

    def take(t):
        nonlocal pos
        n = t.numel()
        if pos + n > flat.numel():
            raise ValueError("model file has fewer parameters than the architecture")
        chunk = flat[pos:pos + n]
        pos += n
        return chunk

    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, tnn.Conv2d):
                o, i, kh, kw = m.weight.shape
                m.weight.copy_(take(m.weight).reshape(o, kh, kw, i).permute(0, 3, 1, 2))
                m.bias.copy_(take(m.bias))
            elif isinstance(m, (tnn.BatchNorm1d, tnn.BatchNorm2d)):
                for t in (m.weight, m.bias, m.running_mean, m.running_var):
                    t.copy_(take(t))
            elif isinstance(m, tnn.Linear):
                m.weight.copy_(take(m.weight).reshape(m.weight.shape))
                m.bias.copy_(take(m.bias))
    if pos != flat.numel():
        raise ValueError("model file has %d parameters, the architecture %d" % (flat.numel(), pos))


def load_model(path):
    """(arch, net, classes, model_id) from a .emod file or an architecture JSON."""
    if path.endswith(".json"):
        with open(path) as f:
            arch = json.load(f)
        torch.manual_seed(0)
        net, _ = build_model(arch)
        classes = list(arch.get("classes") or DEFAULT_CLASSES)
        return arch, net.eval(), classes, arch.get("name", "random")
    header, params = read_emod(path)
    arch = dict(header["arch"])
    arch["input"] = dict(header.get("input") or arch["input"])
    net, _ = build_model(arch)
    load_our_params(net, params)
    classes = list(header.get("classes") or DEFAULT_CLASSES)
    return arch, net.eval(), classes, arch.get("name", os.path.basename(path))


def predictors(arch, net):
    """{variant: predictor}: eager NCHW, frozen TorchScript, and frozen
    TorchScript of the channels_last model, as bench/torch_bench.py measures."""
    inp = arch["input"]

    def make(n):
        return Predictor(n, float(inp.get("scale", 1.0)), float(inp.get("mean", 0.0)),
                         float(inp.get("std", 1.0))).eval()

    import copy
    with torch.inference_mode():
        script = torch.jit.freeze(torch.jit.script(make(net)))
        net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
        script_cl = torch.jit.freeze(torch.jit.script(make(net_cl)))
    return {"eager": make(net), "torchscript": script, "torchscript+channels_last": script_cl}


def median_ms(fn, x, min_seconds=0.3, min_runs=10, warmup=5):
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        times = []
        while len(times) < min_runs or sum(times) < min_seconds:
            t0 = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


# ---- OpenBLAS of this process (torch's dense layers use it) --------------------

def openblas():
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "libopenblas" in line})
    except OSError:
        return None
    for p in libs:
        try:
            lib = ctypes.CDLL(p)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib
        except (OSError, AttributeError):
            continue
    return None


# ---- the service ----------------------------------------------------------------

def error(status, code, message):
    r = jsonify(error={"code": code, "message": message})
    r.status_code = status
    return r


def set_threads(threads):
    """torch and OpenBLAS threads of this process; returns the OpenBLAS library."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set in this process
    blas = openblas()
    if blas is not None:
        blas.openblas_set_num_threads(threads)
    return blas


def time_variants(preds, side, min_seconds):
    """{variant: median batch-1 ms}."""
    probe = torch.randint(0, 256, (1, 1, side, side), dtype=torch.uint8)
    return {name: median_ms(p, probe, min_seconds) for name, p in preds.items()}


def pick_variant(model_path, threads, min_seconds=1.0):
    """Prints "key value" lines: the batch-1 latency of each variant and the
    fastest one (flask_variant), for bench/service.sh to serve in every worker."""
    set_threads(threads)
    arch, net, _, _ = load_model(model_path)
    times = time_variants(predictors(arch, net), int(arch["input"]["size"]), min_seconds)
    for k, v in times.items():
        print("flask_b1_latency_ms_%s %.3f" % (k.replace("+", "_"), v))
    print("flask_variant %s" % min(times, key=times.get), flush=True)


def create_app(model_path=None, variant=None, threads=None):
    model_path = model_path or os.environ.get("EMOTIOND_FLASK_MODEL", "")
    variant = variant or os.environ.get("EMOTIOND_FLASK_VARIANT", "auto")
    threads = int(threads or os.environ.get("EMOTIOND_FLASK_THREADS", "1"))
    if not model_path:
        raise SystemExit("flask_service: set EMOTIOND_FLASK_MODEL (a .emod file or arch .json)")
    if variant != "auto" and variant not in VARIANTS:
        raise SystemExit("flask_service: EMOTIOND_FLASK_VARIANT must be auto or one of %s"
                         % ", ".join(VARIANTS))
    blas = set_threads(threads)
    arch, net, classes, model_id = load_model(model_path)
    side = int(arch["input"]["size"])
    preds = predictors(arch, net)
    if variant == "auto":
        times = time_variants(preds, side, 0.3)
        variant = min(times, key=times.get)
        timing = ", ".join("%s %.3f ms" % (k, v) for k, v in times.items())
    else:
        preds = {variant: preds[variant]}
        timing = "given, %.3f ms" % time_variants(preds, side, 0.1)[variant]
    predict_fn = preds[variant]
    core = blas.openblas_get_corename().decode() if blas is not None else "none"
    env = ",".join("%s=%s" % (k, os.environ[k]) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                   if k in os.environ) or "unset"
    print("flask_service: pid %d variant %s (batch-1 %s) torch %s threads %d openblas_core %s "
          "openblas_env %s model %s" % (os.getpid(), variant, timing, torch.__version__, threads,
                                        core, env, model_path), file=sys.stderr, flush=True)

    app = Flask("flask_service")
    model_info = {"id": model_id, "version": "flask+torch " + variant}

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @app.post("/predict")
    def predict():
        t0 = time.perf_counter()
        mime = request.mimetype
        if mime == "multipart/form-data":
            f = request.files.get("image")
            if f is None:
                return error(400, "missing_field", 'no "image" field in the form')
            data = f.read()
        elif mime == "application/json":
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or not isinstance(body.get("image"), str):
                return error(400, "invalid_json", 'expected {"image": "<base64>"}')
            try:
                data = base64.b64decode(body["image"], validate=True)
            except (binascii.Error, ValueError):
                return error(400, "invalid_base64", '"image" is not valid base64')
        elif mime in ("image/png", "image/jpeg", "application/octet-stream", ""):
            data = request.get_data(cache=False)
        else:
            return error(415, "unsupported_media_type", "send image/png or image/jpeg")
        if not data:
            return error(400, "empty_body", "the image is empty")
        try:
            img = Image.open(io.BytesIO(data))
            img = img.convert("L")
            if img.size != (side, side):
                img = img.resize((side, side), Image.BOX)  # area averaging
            pixels = np.asarray(img, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            return error(400, "corrupt_image", "the image cannot be decoded: %s" % e)
        x = torch.from_numpy(pixels.copy()).reshape(1, 1, side, side)
        with torch.inference_mode():
            probs = predict_fn(x)[0].tolist()
        best = max(range(len(probs)), key=probs.__getitem__)
        return jsonify(emotion=classes[best], confidence=probs[best],
                       probabilities=dict(zip(classes, probs)), model=model_info,
                       elapsed_ms=(time.perf_counter() - t0) * 1e3)

    return app


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="minimal Flask + PyTorch emotion service "
                                 "(Flask's dev server; the benchmark runs it under gunicorn)")
    ap.add_argument("--model", required=True, help=".emod model file or architecture .json")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--variant", default=None, help="auto (default), " + ", ".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--pick-variant", action="store_true",
                    help="only time the variants (batch 1) and print the fastest")
    a = ap.parse_args()
    if a.pick_variant:
        pick_variant(a.model, int(a.threads or os.environ.get("EMOTIOND_FLASK_THREADS", "1")))
    else:
        create_app(a.model, a.variant, a.threads).run(host=a.host, port=a.port, threaded=False)
else:
    # gunicorn imports this module in each worker (no --preload): one model,
    # one TorchScript compilation and one variant choice per process.
    app = create_app()
