#!/usr/bin/python3
"""PyTorch figures for the same architecture as bench/bench_nn.c.

    /usr/bin/python3 bench/torch_bench.py [--quick] [--keep-openblas-env] [--default-malloc] ARCH.json
    /usr/bin/python3 bench/torch_bench.py --b1-only [...] ARCH.json
    /usr/bin/python3 bench/torch_bench.py --b1-fine build/bench/bench_nn [--fine-rounds R]
                     [--fine-warm-ms W] [--fine-ms T] [...] ARCH.json

Prints the same "key value" lines as build/bench/bench_nn ('#' lines are
comments), so bench/run.sh can put them side by side: SGEMM GFLOP/s (torch.mm)
with 1 and 2 threads, batch-1 latency and batch-64 images/s with 1 thread
(eager, TorchScript, TorchScript on channels_last), training images/s with 2
threads (batch 64, the architecture's optimizer; NCHW and channels_last),
efficiencies against the SGEMM rate. See bench/README.md. --b1-only prints
only the batch-1 latencies (bench/run.sh's rounds alternated with bench_nn).

--b1-fine BENCH_NN alternates batch-1 calls with the C engine's in one run:
it starts BENCH_NN --b1-serve on the same architecture and, in each of R
rounds (--fine-rounds, default 40; 4 with --quick), runs each PyTorch
variant, the C engine in fp32 and the C engine in fp16 filters in turn, the
first side rotating from round to round. Every side gets the same time:
untimed calls for --fine-warm-ms (default 50; 10 with --quick), then timed
ones for --fine-ms (default 200; 40 with --quick) and at least 5 calls,
because on a VM a process that has slept runs slower for a while after it
wakes (bench/README.md, "Fine alternation"), and a side timed for fewer
milliseconds than the other would be timed more of its slow start. A
round lasts about a second, so both sides see the same load on a noisy
machine, where separate runs seconds apart do not. Prints b1_fine_* lines:
the medians of each side's round medians, and the medians and quartiles of
the rounds' ratios.

The model is built from the JSON by tests/torch_reference.py (NHWC flatten,
explicit 'same' padding), so it computes exactly what the C engine computes.
Like bench_nn, this removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (unless
--keep-openblas-env or EMOTIOND_BENCH_KEEP_OPENBLAS_ENV=1) and sets
MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_ (unless --default-malloc or
EMOTIOND_BENCH_DEFAULT_MALLOC=1), re-executing itself before torch is loaded.
Never fails on timing.
"""
import argparse
import copy
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Same settings as bench/bench_nn.c: keep freed memory in the heap.
MALLOC_VARS = (("MALLOC_MMAP_MAX_", "0"), ("MALLOC_TRIM_THRESHOLD_", "4000000000"))
KEEP_ENV = "EMOTIOND_BENCH_KEEP_OPENBLAS_ENV"
MALLOC_ENV = "EMOTIOND_BENCH_DEFAULT_MALLOC"
UNSET_NOTE = "EMOTIOND_BENCH_UNSET"
REEXEC_MARK = "EMOTIOND_BENCH_REEXEC"
BATCH = 64


def env_flag(name):
    return os.environ.get(name, "") not in ("", "0")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("arch", help="architecture JSON (config/arch/*.json)")
    ap.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    ap.add_argument("--keep-openblas-env", action="store_true",
                    help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as set")
    ap.add_argument("--default-malloc", action="store_true",
                    help="do not set MALLOC_MMAP_MAX_ / MALLOC_TRIM_THRESHOLD_")
    ap.add_argument("--b1-only", action="store_true",
                    help="only the batch-1 latencies (every variant)")
    ap.add_argument("--b1-fine", metavar="BENCH_NN",
                    help="only batch-1 latencies, alternated in rounds of about a second "
                         "with BENCH_NN --b1-serve (the C engine)")
    ap.add_argument("--fine-rounds", type=int, default=None, help="rounds of --b1-fine")
    ap.add_argument("--fine-warm-ms", type=float, default=None,
                    help="untimed milliseconds per side and round of --b1-fine")
    ap.add_argument("--fine-ms", type=float, default=None,
                    help="timed milliseconds per side and round of --b1-fine")
    args = ap.parse_args()
    args.keep_openblas_env = args.keep_openblas_env or env_flag(KEEP_ENV)
    args.default_malloc = args.default_malloc or env_flag(MALLOC_ENV)
    args.min_seconds = 0.3 if args.quick else 2.0
    if args.fine_rounds is None:
        args.fine_rounds = 4 if args.quick else 40
    if args.fine_warm_ms is None:
        args.fine_warm_ms = 10.0 if args.quick else 50.0
    if args.fine_ms is None:
        args.fine_ms = 40.0 if args.quick else 200.0
    if args.fine_rounds < 1:
        ap.error("--fine-rounds takes a number from 1 on")
    if not (0 <= args.fine_warm_ms <= 10000 and 0 <= args.fine_ms <= 10000):
        ap.error("--fine-warm-ms and --fine-ms take milliseconds from 0 to 10000")
    return args


def fix_env(args):
    """OpenBLAS and glibc malloc read their variables at process start, so
    change them and re-execute this script (before torch is imported)."""
    if REEXEC_MARK not in os.environ:
        os.environ.pop(UNSET_NOTE, None)  # not ours
    unset = []
    for v in BLAS_VARS if not args.keep_openblas_env else ():
        if v in os.environ:
            unset.append("%s=%s" % (v, os.environ.pop(v)))
    changed = bool(unset)
    for k, v in MALLOC_VARS if not args.default_malloc else ():
        if k not in os.environ:
            os.environ[k] = v
            changed = True
    if changed:
        os.environ[UNSET_NOTE] = ",".join(unset)
        os.environ[REEXEC_MARK] = "1"
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable] + sys.argv)
    note = os.environ.pop(UNSET_NOTE, "")
    os.environ.pop(REEXEC_MARK, None)
    kept = ["%s=%s" % (v, os.environ[v]) for v in BLAS_VARS if v in os.environ]
    blas = ("kept:" + ",".join(kept)) if kept else ("unset:" + note) if note else "default"
    mal = ",".join("%s=%s" % (k, os.environ[k]) for k, _ in MALLOC_VARS if k in os.environ)
    return blas, mal or "default"


ARGS = parse_args()
ENV_NOTE, MALLOC_NOTE = fix_env(ARGS)

import torch  # noqa: E402  (after the environment is fixed)
import torch.nn as tnn  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from torch_reference import build_model  # noqa: E402


# ---- OpenBLAS inside this process -------------------------------------------

def openblas():
    """The OpenBLAS library torch loaded (None if torch uses another BLAS)."""
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "libopenblas" in line}
    for path in sorted(libs):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib
        except OSError:
            continue
    return None


BLAS = openblas()


def set_threads(n):
    torch.set_num_threads(n)
    if BLAS is not None:
        BLAS.openblas_set_num_threads(n)


# ---- timing ---------------------------------------------------------------------

def time_calls(fn, warmup, min_runs, max_runs, min_seconds):
    """(median, fastest) seconds per call, as bench_nn.c's time_calls."""
    for _ in range(warmup):
        fn()
    times = []
    while len(times) < max_runs and (len(times) < min_runs or sum(times) < min_seconds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def sgemm_gflops(m, n, k, threads):
    set_threads(threads)
    a, b, c = torch.rand(m, k) - 0.5, torch.rand(k, n) - 0.5, torch.empty(m, n)
    # the fastest call: other load on the machine only ever slows it down
    _, best = time_calls(lambda: torch.mm(a, b, out=c), 2, 5, 1000, ARGS.min_seconds / 4)
    return 2.0 * m * n * k / best * 1e-9


# ---- model ------------------------------------------------------------------------

class Predictor(tnn.Module):
    """uint8 NCHW pixels -> class probabilities, like nn_predict_u8."""

    def __init__(self, net, scale: float, mean: float, std: float):
        super().__init__()
        self.net, self.scale, self.mean, self.std = net, scale, mean, std

    def forward(self, pixels):
        x = (pixels.float() * self.scale - self.mean) / self.std
        return torch.softmax(self.net(x), dim=1)


def make_predictor(arch, net):
    inp = arch["input"]
    return Predictor(net, float(inp.get("scale", 1.0)), float(inp.get("mean", 0.0)),
                     float(inp.get("std", 1.0))).eval()


def random_pixels(arch, batch):
    s, c = int(arch["input"]["size"]), int(arch["input"].get("channels", 1))
    return torch.randint(0, 256, (batch, c, s, s), dtype=torch.uint8)


def infer_seconds(predict, pixels, min_runs):
    set_threads(1)
    with torch.inference_mode():
        return time_calls(lambda: predict(pixels), 2, min_runs, 10000, ARGS.min_seconds)[0]


def channels_last(net):
    return copy.deepcopy(net).to(memory_format=torch.channels_last)


def predictors(arch, net):
    """(suffix, predictor) variants: eager NCHW as built, frozen TorchScript,
    and frozen TorchScript of the channels_last model (oneDNN's fast path)."""
    with torch.inference_mode():
        script = torch.jit.freeze(torch.jit.script(make_predictor(arch, net)))
        script_cl = torch.jit.freeze(torch.jit.script(make_predictor(arch, channels_last(net))))
    return [("", make_predictor(arch, net)), ("_script", script), ("_script_cl", script_cl)]


def make_optimizer(arch, params):
    tr = arch.get("training", {})
    if tr.get("optimizer", "adam") == "sgd":
        return "sgd", torch.optim.SGD(params, lr=1e-4, momentum=float(tr.get("momentum", 0.9)),
                                      nesterov=bool(tr.get("nesterov", False)),
                                      weight_decay=float(tr.get("weight_decay", 0.0)))
    return "adam", torch.optim.Adam(params, lr=1e-4)


def train_images_per_s(arch, net, memory_format):
    """Images/s of training steps (batch 64, 2 threads) on a copy of net."""
    set_threads(2)
    net = copy.deepcopy(net).to(memory_format=memory_format).train()
    name, opt = make_optimizer(arch, net.parameters())
    inp = arch["input"]
    x = (random_pixels(arch, BATCH).float() * float(inp.get("scale", 1.0))
         - float(inp.get("mean", 0.0))) / float(inp.get("std", 1.0))
    x = x.contiguous(memory_format=memory_format)
    n_classes = int([l for l in arch["layers"] if l["type"] == "dense"][-1]["units"])
    labels = torch.randint(0, n_classes, (BATCH,))
    loss_fn = tnn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), labels)
        loss.backward()
        opt.step()

    t, _ = time_calls(step, 1, 2 if ARGS.quick else 3, 1000, ARGS.min_seconds)
    return name, BATCH / t


# ---- output -----------------------------------------------------------------------

def put(key, value, fmt="%.1f"):
    print("%s %s" % (key, fmt % value if isinstance(value, float) else value), flush=True)


def print_env():
    if ENV_NOTE.startswith("unset:"):
        print("# NOTE: unset %s for this benchmark (--keep-openblas-env or %s=1 "
              "keeps them)" % (ENV_NOTE[6:], KEEP_ENV))
    elif ENV_NOTE.startswith("kept:"):
        print("# NOTE: OpenBLAS environment kept as is (%s)" % ENV_NOTE[5:])
    put("openblas_env", ENV_NOTE)
    if MALLOC_NOTE != "default":
        print("# NOTE: glibc malloc tuned (%s: no mmap/munmap page-fault churn per "
              "allocation; --default-malloc or %s=1 disables)" % (MALLOC_NOTE, MALLOC_ENV))
    put("malloc_env", MALLOC_NOTE)
    core = BLAS.openblas_get_corename().decode() if BLAS is not None else "none"
    put("openblas_core", core)


def bench_sgemm():
    sq1, sq2 = sgemm_gflops(1024, 1024, 1024, 1), sgemm_gflops(1024, 1024, 1024, 2)
    put("sgemm_1024_gflops_t1", sq1)
    put("sgemm_1024_gflops_t2", sq2)
    put("sgemm_conv_2304x64x1024_gflops_t1", sgemm_gflops(2304, 64, 1024, 1))
    put("sgemm_conv_2304x64x1024_gflops_t2", sgemm_gflops(2304, 64, 1024, 2))
    return sq1, sq2


def put_best(key, results, better):
    """key_best value and key_best_variant, the best of {suffix: value}."""
    suffix = better(results, key=results.get)
    put(key + "_best", results[suffix], "%.3f" if "latency" in key else "%.1f")
    put(key + "_best_variant", VARIANT_NAMES[suffix])


VARIANT_NAMES = {"": "eager", "_script": "torchscript", "_script_cl": "torchscript+channels_last",
                 "_cl": "eager+channels_last"}


def b1_latency_ms(suffix, predict, p1):
    """Batch-1 ms of one variant, printed as infer_b1_latency_ms_t1<suffix>."""
    ms = infer_seconds(predict, p1, 5 if ARGS.quick else 20) * 1e3
    put("infer_b1_latency_ms_t1" + suffix, ms, "%.3f")
    return ms


def bench_b1(arch, net):
    """Batch-1 latency of every variant and the best, nothing else."""
    p1, lat = random_pixels(arch, 1), {}
    for suffix, predict in predictors(arch, net):
        lat[suffix] = b1_latency_ms(suffix, predict, p1)
    put_best("infer_b1_latency_ms_t1", lat, min)


# ---- batch-1 latency alternated with the C engine (--b1-fine) -------------------

class CEngine:
    """BENCH_NN --b1-serve as a child: "PRECISION N WARM_MS MIN_MS" in,
    "MS SERVED" out."""

    def __init__(self, bench_nn, arch_path):
        cmd = [bench_nn, "--b1-serve"]
        cmd += ["--keep-openblas-env"] if ARGS.keep_openblas_env else []
        cmd += ["--default-malloc"] if ARGS.default_malloc else []
        self.proc = subprocess.Popen(cmd + [arch_path], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        first = self.proc.stdout.readline().strip()
        if first != "ready":
            raise RuntimeError("%s --b1-serve: expected 'ready', got %r" % (bench_nn, first))

    def median_ms(self, precision, calls, warm_ms, min_ms):
        """(median ms of batch-1 calls, the precision they ran in): untimed
        for warm_ms, then timed for at least calls calls and min_ms"""
        self.proc.stdin.write("%s %d %g %g\n" % (precision, calls, warm_ms, min_ms))
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().split()
        if len(reply) != 2 or reply[0] == "error":
            raise RuntimeError("bench_nn --b1-serve: %s" % " ".join(reply))
        return float(reply[0]), reply[1]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def quartiles(v):
    """(lower quartile, median, upper quartile) of a list"""
    if len(v) < 2:
        return v[0], v[0], v[0]
    q = statistics.quantiles(v, n=4)
    return q[0], statistics.median(v), q[2]


FINE_MIN_CALLS = 5


def timed_for(fn, warm_ms, min_ms):
    """The median ms of fn's calls: untimed for warm_ms (at least 2 calls),
    then timed for at least FINE_MIN_CALLS calls and min_ms, as
    bench_nn --b1-serve times the C engine."""
    time_calls(fn, 0, 2, 100000, warm_ms / 1e3)  # the warm-up: its timing thrown away
    return time_calls(fn, 0, FINE_MIN_CALLS, 100000, min_ms / 1e3)[0] * 1e3


def bench_b1_fine(arch, net):
    """Rounds of batch-1 calls of each side, the first side rotating, each
    side the same time."""
    set_threads(1)
    p1, warm, timed = random_pixels(arch, 1), ARGS.fine_warm_ms, ARGS.fine_ms
    preds = predictors(arch, net)
    engine = CEngine(ARGS.b1_fine, ARGS.arch)
    # (name, C precision or None, PyTorch predictor or None); the names give
    # b1_fine_torch_eager_ms, b1_fine_torch_script_ms, ..., b1_fine_c_fp16_ms
    torch_sides = [("torch_" + (suffix[1:] or "eager"), None, p) for suffix, p in preds]
    sides = torch_sides + [("c_fp32", "fp32", None), ("c_fp16", "fp16", None)]
    ms = {name: [] for name, _, _ in sides}
    served16 = "?"
    try:
        with torch.inference_mode():
            for r in range(ARGS.fine_rounds):
                k = r % len(sides)
                for name, precision, predict in sides[k:] + sides[:k]:
                    if precision:
                        t, served = engine.median_ms(precision, FINE_MIN_CALLS, warm, timed)
                        served16 = served if precision == "fp16" else served16
                    else:
                        t = timed_for(lambda: predict(p1), warm, timed)
                    ms[name].append(t)
    finally:
        engine.close()
    put("b1_fine_rounds", ARGS.fine_rounds)
    put("b1_fine_warm_ms", warm, "%g")
    put("b1_fine_ms", timed, "%g")
    put("b1_fine_fp16_served", served16)
    best = [min(ms[name][r] for name, _, _ in torch_sides) for r in range(ARGS.fine_rounds)]
    for name, _, _ in sides:
        put("b1_fine_%s_ms" % name, statistics.median(ms[name]), "%.3f")
    put("b1_fine_torch_best_ms", statistics.median(best), "%.3f")
    for c in ("fp32", "fp16"):
        for variant, torch_ms in (("eager", ms["torch_eager"]), ("best", best)):
            q1, med, q3 = quartiles([a / b for a, b in zip(torch_ms, ms["c_" + c])])
            key = "b1_fine_%s_%s_speedup" % (c, variant)
            put(key, med, "%.2f")
            put(key + "_q1", q1, "%.2f")
            put(key + "_q3", q3, "%.2f")


def bench_inference(arch, net, flops, sq1):
    p1, p64 = random_pixels(arch, 1), random_pixels(arch, BATCH)
    lat, ips = {}, {}
    for suffix, predict in predictors(arch, net):
        lat[suffix] = b1_latency_ms(suffix, predict, p1)
        ips[suffix] = BATCH / infer_seconds(predict, p64, 3)
        put("infer_b64_img_s_t1" + suffix, ips[suffix])
    put("infer_b1_img_s_t1", 1e3 / lat[""])
    put("infer_b64_gflops_t1", flops * ips[""] * 1e-9)
    put("infer_b64_efficiency_t1", flops * ips[""] * 1e-9 / sq1, "%.3f")
    put_best("infer_b1_latency_ms_t1", lat, min)
    put_best("infer_b64_img_s_t1", ips, max)
    best = max(ips.values())
    put("infer_b64_efficiency_t1_best", flops * best * 1e-9 / sq1, "%.3f")


def bench_training(arch, net, flops, sq2):
    ips = {}
    for suffix, fmt in (("", torch.contiguous_format), ("_cl", torch.channels_last)):
        name, ips[suffix] = train_images_per_s(arch, net, fmt)
        put("train_b64_img_s_t2" + suffix, ips[suffix])
    put("train_optimizer", name)
    # a training step is ~3 forward passes (forward, input and weight gradients)
    put("train_b64_gflops_t2", 3 * flops * ips[""] * 1e-9)
    put("train_b64_efficiency_t2", 3 * flops * ips[""] * 1e-9 / sq2, "%.3f")
    put_best("train_b64_img_s_t2", ips, max)
    put("train_b64_efficiency_t2_best", 3 * flops * max(ips.values()) * 1e-9 / sq2, "%.3f")


def main():
    with open(ARGS.arch) as f:
        arch = json.load(f)
    torch.manual_seed(0)
    net, flops = build_model(arch)
    net.eval()
    print("# torch_bench: PyTorch %s, %s%s" % (torch.__version__, ARGS.arch,
                                             " (quick)" if ARGS.quick else ""))
    put("impl", "torch")
    put("arch", arch.get("name", os.path.splitext(os.path.basename(ARGS.arch))[0]))
    put("cpus_online", os.cpu_count())
    put("loadavg_1min", os.getloadavg()[0], "%.2f")
    print_env()
    if ARGS.b1_only:
        bench_b1(arch, net)
        return
    if ARGS.b1_fine:
        bench_b1_fine(arch, net)
        return
    sq1, sq2 = bench_sgemm()
    put("params", sum(t.numel() for t in list(net.parameters()) + list(net.buffers())
                      if t.is_floating_point()))
    put("flops_per_image", flops)
    bench_inference(arch, net, flops, sq1)
    bench_training(arch, net, flops, sq2)


if __name__ == "__main__":
    main()
