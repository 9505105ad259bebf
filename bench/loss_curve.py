#!/usr/bin/python3
"""The PyTorch side of bench/loss_curve.sh: trains an emotiond model file's
network in PyTorch exactly as `emotiond train` does, so that the two loss
curves can be compared (issue 6: "the same loss curve over the first epochs").

    loss_curve.py train --init INIT.emod --data DIR --out DIR [--epochs 3] [--torch-seed 1]
    loss_curve.py eval --data DIR --out FILE.csv MODEL.emod...   # val loss/acc of C snapshots
    loss_curve.py decode-check --data DIR        # PIL against libturbojpeg, pixel by pixel
    loss_curve.py table --c DIR --torch DIR [--torch DIR] [--c-eval CSV] [--c-log FILE]

What `train` reproduces of nn/train_loop.c and nn/trainer.c (read them):
  * data: DIR/train/<class>/ in the class order angry..surprise, each folder's
    *.jpg|*.jpeg|*.png sorted by name (byte order, strcmp), decoded to 8-bit
    grey by PIL (libjpeg-turbo, the library TurboJPEG wraps: `decode-check`
    compares them); `--max-train N` keeps images i*n//N, as the C subset does;
  * order: each epoch shuffles with Fisher-Yates driven by splitmix64 seeded
    with mix(seed, epoch), bit for bit; the last partial batch is kept;
  * input: pixel * float32(scale/std) + float32(-mean/std), like nn_normalize_u8;
  * optimizer: SGD with momentum and Nesterov as torch.optim.SGD (dampening 0:
    buf = mu*buf + g + wd*w; w -= lr*(g + wd*w + mu*buf)), weight decay added
    to the gradient of conv and dense weights only (plus 2*l2 of the layer),
    never to biases or batch-norm gamma/beta; constant lr;
  * batch norm: batch statistics over the whole batch, eps and momentum from
    the architecture (PyTorch's convention), unbiased running variance;
  * loss: mean cross-entropy over the batch (label smoothing from the options);
    the epoch's loss is the image-weighted mean of the batch losses, its
    accuracy the training-mode argmax hits, as history.csv records them;
  * validation: eval mode on DIR/test, accuracy and mean cross-entropy.
What differs: dropout masks (torch's generator, `--torch-seed`) and float
rounding (oneDNN's convolutions against the engine's Winograd and GEMMs);
`--perturb` measures what rounding alone does: the same run from weights
nudged by about one fp32 ulp.

`train` writes OUT/history.csv (epoch,loss,accuracy,val_loss,val_accuracy,
seconds,images_per_s; seconds and images/s count training steps only),
OUT/steps.csv (the loss of every step) and OUT/final.npy (the parameters in
the engine's order, for comparing with its checkpoint). Training runs at about
120 images/s on 2 threads here: some 4 minutes per FER2013 epoch.
"""
import argparse
import ast
import csv
import ctypes
import ctypes.util
import json
import os
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from torch_reference import build_model, our_params  # noqa: E402

CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # nn/dataset.c
EXTENSIONS = (".jpg", ".jpeg", ".png")
MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def reuse_from_flask_service(names):
    """The named functions of bench/flask_service.py (read_emod,
    load_our_params). Importing that module would build its Flask app (its
    module level runs create_app for gunicorn), so only their definitions are
    compiled, with the modules they use."""
    path = os.path.join(HERE, "flask_service.py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    if len(body) != len(names):
        raise SystemExit("loss_curve.py: %s no longer defines %s" % (path, ", ".join(names)))
    ns = {"np": np, "torch": torch, "tnn": tnn, "json": json, "struct": struct, "zlib": zlib}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), ns)
    return [ns[n] for n in names]


read_emod, load_our_params = reuse_from_flask_service(("read_emod", "load_our_params"))


# ---- the engine's random numbers (nn/internal.h, nn/train_loop.c) ---------------

def splitmix64(state):
    """nn_rng_next: (new state, output)."""
    state = (state + GOLDEN) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def mix(a, b):
    """train_loop.c's mix(a, b)."""
    s = ((a * GOLDEN) & MASK64) ^ ((b + 0x632BE59BD9B4E019) & MASK64)
    return splitmix64(s)[1]


def epoch_order(n, seed, epoch):
    """train_loop.c's shuffle(order, n, mix(seed, epoch))."""
    order = list(range(n))
    r = mix(seed, epoch)
    for i in range(n - 1, 0, -1):
        r, v = splitmix64(r)
        j = v % (i + 1)
        order[i], order[j] = order[j], order[i]
    return np.array(order, dtype=np.int64)


# ---- data (nn/dataset.c) -------------------------------------------------------------

def list_split(split_dir):
    """[(path, label)] in the engine's order: classes in CLASSES order
    (folder names case-insensitive), file names sorted bytewise."""
    folders = {}
    for name in os.listdir(split_dir):
        if name.lower() in CLASSES and os.path.isdir(os.path.join(split_dir, name)):
            folders[CLASSES.index(name.lower())] = os.path.join(split_dir, name)
    files = []
    for k in sorted(folders):
        names = [f for f in os.listdir(folders[k])
                 if not f.startswith(".") and os.path.splitext(f)[1].lower() in EXTENSIONS]
        names.sort(key=lambda s: s.encode())
        files += [(os.path.join(folders[k], f), k) for f in names]
    if not files:
        raise SystemExit("loss_curve.py: no images under %s/<class>/" % split_dir)
    return files


def load_split(split_dir, side, max_n=0):
    """(uint8 [n, side, side], int64 labels) decoded by PIL in grey; with
    max_n, the evenly spaced subset the engine's --max-train keeps."""
    files = list_split(split_dir)
    if 0 < max_n < len(files):
        files = [files[i * len(files) // max_n] for i in range(max_n)]
    pixels = np.empty((len(files), side, side), dtype=np.uint8)
    for i, (path, _) in enumerate(files):
        with Image.open(path) as img:
            img = img.convert("L")
            if img.size != (side, side):
                raise SystemExit("loss_curve.py: %s is %dx%d, not %dx%d" % (path, *img.size, side, side))
            pixels[i] = np.asarray(img, dtype=np.uint8)
    return pixels, np.array([k for _, k in files], dtype=np.int64)


def normalizer(arch):
    """pixels -> float32 NCHW as nn_normalize_u8 computes it (float32 a, s)."""
    inp = arch["input"]
    scale, mean, std = (np.float32(inp.get(k, d)) for k, d in (("scale", 1.0), ("mean", 0.0), ("std", 1.0)))
    a, s = np.float32(scale / std), np.float32(-mean / std)

    def norm(px):
        x = px.astype(np.float32) * a + s
        return torch.from_numpy(x.reshape(len(px), 1, px.shape[1], px.shape[2]))
    return norm


# ---- model and optimizer -----------------------------------------------------------

def load_init(path):
    """(arch with its input block, torch net with the file's weights)."""
    header, params = read_emod(path)
    arch = dict(header["arch"])
    arch["input"] = dict(header.get("input") or arch["input"])
    net, _ = build_model(arch)
    load_our_params(net, params)
    return arch, net


def param_groups(arch, net, weight_decay):
    """Conv and dense weights decay by weight_decay + 2*l2 of their layer
    (trainer.c's build_ranges); biases and batch-norm parameters do not."""
    specs = [s for s in arch["layers"] if s["type"] in ("conv", "dense")]
    mods = [m for m in net.modules() if isinstance(m, (tnn.Conv2d, tnn.Linear))]
    if len(specs) != len(mods):
        raise SystemExit("loss_curve.py: the built net does not match the architecture")
    groups, rest = {}, []
    for spec, m in zip(specs, mods):
        decay = float(weight_decay) + 2.0 * float(np.float32(spec.get("l2", 0.0)))
        groups.setdefault(decay, []).append(m.weight)
        rest.append(m.bias)
    rest += [p for m in net.modules() if isinstance(m, (tnn.BatchNorm1d, tnn.BatchNorm2d))
             for p in (m.weight, m.bias)]
    return [{"params": p, "weight_decay": d} for d, p in groups.items()] + \
           [{"params": rest, "weight_decay": 0.0}]


def evaluate(net, norm, pixels, labels, batch=64):
    """(mean cross-entropy, accuracy) in eval mode."""
    net.eval()
    loss, ok = 0.0, 0
    with torch.no_grad():
        for b0 in range(0, len(pixels), batch):
            logits = net(norm(pixels[b0:b0 + batch]))
            y = torch.from_numpy(labels[b0:b0 + batch])
            loss += F.cross_entropy(logits.double(), y, reduction="sum").item()
            ok += int((logits.argmax(1) == y).sum())
    return loss / len(pixels), ok / len(pixels)


def option(given, training, key, default):
    """An option as train_loop.c's resolve picks it: given, else the
    architecture's training block, else the default."""
    if given is not None:
        return given
    v = training.get(key, default)
    return float(v) if isinstance(v, bool) else v


# ---- subcommands ---------------------------------------------------------------------

def cmd_train(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.torch_seed)
    arch, net = load_init(a.init)
    if a.perturb:
        gen = torch.Generator().manual_seed(a.torch_seed)
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(1 + a.perturb * torch.randn(p.shape, generator=gen))
    tr = arch.get("training", {})
    batch = int(option(a.batch, tr, "batch", 64))
    lr = float(option(a.lr, tr, "lr", 0.01))
    momentum = float(option(a.momentum, tr, "momentum", 0.9))
    nesterov = bool(option(a.nesterov, tr, "nesterov", 1))
    wd = float(np.float32(option(a.weight_decay, tr, "weight_decay", 0.0)))
    smoothing = float(np.float32(option(a.label_smoothing, tr, "label_smoothing", 0.0)))
    seed = int(option(a.seed, tr, "seed", 1))
    if str(tr.get("optimizer", "sgd")) != "sgd":
        raise SystemExit("loss_curve.py: only SGD is reproduced (the architecture trains with %s)"
                         % tr["optimizer"])
    side = int(arch["input"]["size"])
    norm = normalizer(arch)
    t0 = time.time()
    xtr, ytr = load_split(os.path.join(a.data, "train"), side, a.max_train)
    xva, yva = load_split(os.path.join(a.data, "test"), side)
    print("loss_curve.py: %d training, %d validation images decoded in %.1f s; batch %d lr %g "
          "momentum %g nesterov %d weight_decay %g seed %d torch_seed %d threads %d %s"
          % (len(xtr), len(xva), time.time() - t0, batch, lr, momentum, nesterov, wd, seed,
             a.torch_seed, a.threads, "perturb %g" % a.perturb), flush=True)
    opt = torch.optim.SGD(param_groups(arch, net, wd), lr=lr, momentum=momentum,
                          nesterov=nesterov, dampening=0.0)
    os.makedirs(a.out, exist_ok=True)
    hist_rows, step_rows = [], []
    steps = (len(xtr) + batch - 1) // batch
    for ep in range(a.epochs):
        order = epoch_order(len(xtr), seed, ep)
        net.train()
        loss_sum, correct, train_s = 0.0, 0, 0.0
        for st in range(steps):
            idx = order[st * batch:(st + 1) * batch]
            x, y = norm(xtr[idx]), torch.from_numpy(ytr[idx])
            t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            logits = net(x)
            loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
            loss.backward()
            opt.step()
            train_s += time.perf_counter() - t
            lv = loss.item()
            if not np.isfinite(lv):
                raise SystemExit("loss_curve.py: diverged at epoch %d step %d" % (ep + 1, st + 1))
            loss_sum += lv * len(idx)
            correct += int((logits.detach().argmax(1) == y).sum())
            step_rows.append((ep + 1, st + 1, lv))
            if (st + 1) % 100 == 0:
                seen = st * batch + len(idx)
                print("epoch %d/%d step %d/%d loss %.4f acc %.4f %.0f img/s"
                      % (ep + 1, a.epochs, st + 1, steps, loss_sum / seen, correct / seen,
                         seen / train_s), flush=True)
        val_loss, val_acc = evaluate(net, norm, xva, yva)
        row = (ep + 1, loss_sum / len(xtr), correct / len(xtr), val_loss, val_acc, train_s,
               len(xtr) / train_s)
        hist_rows.append(row)
        print("epoch %d/%d  loss %.5f  acc %.5f  val_loss %.5f  val_acc %.5f  %.0f s  %.1f img/s"
              % ((ep + 1, a.epochs) + row[1:]), flush=True)
        with open(os.path.join(a.out, "history.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "images_per_s"))
            w.writerows(hist_rows)
    with open(os.path.join(a.out, "steps.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("epoch", "step", "loss"))
        w.writerows(step_rows)
    np.save(os.path.join(a.out, "final.npy"), our_params(net).numpy())


def cmd_eval(a):
    """Validation loss and accuracy of model files (the C run's snapshots)."""
    torch.set_num_threads(a.threads)
    rows = []
    data = None
    for path in a.models:
        arch, net = load_init(path)
        if data is None:
            data = load_split(os.path.join(a.data, "test"), int(arch["input"]["size"]))
        loss, acc = evaluate(net, normalizer(arch), *data)
        rows.append((path, loss, acc))
        print("%s val_loss %.5f val_accuracy %.5f" % (path, loss, acc), flush=True)
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("model", "val_loss", "val_accuracy"))
        w.writerows(rows)


def cmd_decode_check(a):
    """Decodes every image with PIL and with libturbojpeg (TJPF_GRAY, as
    nn/image.c) and counts the differences."""
    lib = ctypes.util.find_library("turbojpeg")
    if not lib:
        print("decode-check: libturbojpeg not found, skipped")
        return
    tj = ctypes.CDLL(lib)
    tj.tjInitDecompress.restype = ctypes.c_void_p
    tj.tjDecompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p,
                                 ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    tj.tjDestroy.argtypes = [ctypes.c_void_p]
    handle = tj.tjInitDecompress()
    n = n_diff = max_diff = 0
    try:
        for split in ("train", "test"):
            for path, _ in list_split(os.path.join(a.data, split)):
                if not path.lower().endswith((".jpg", ".jpeg")):
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                with Image.open(path) as img:
                    ref = np.asarray(img.convert("L"), dtype=np.uint8)
                out = np.empty_like(ref)
                h, w = ref.shape
                if tj.tjDecompress2(handle, data, len(data), out.ctypes.data, w, w, h, 6, 0):
                    raise SystemExit("decode-check: TurboJPEG cannot decode %s" % path)
                d = int(np.abs(out.astype(np.int16) - ref).max())
                n += 1
                n_diff += d > 0
                max_diff = max(max_diff, d)
    finally:
        tj.tjDestroy(handle)
    print("decode-check: %d JPEGs, %d decode differently in PIL and TurboJPEG, largest pixel "
          "difference %d" % (n, n_diff, max_diff))


def read_csv(path):
    """The rows of a CSV file, none when it is missing (a run still going)."""
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def progress_lines(path):
    """{(epoch, step): (running loss, img/s)} from the "epoch E/N step S/T loss
    L acc A R img/s" lines that emotiond train (stderr, every 100th step) and
    `train` print alike."""
    out = {}
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) >= 10 and p[0] == "epoch" and p[2] == "step" and p[9] == "img/s":
                    out[(int(p[1].split("/")[0]), int(p[3].split("/")[0]))] = (float(p[5]), float(p[8]))
    return out


def fmt(v, spec="%.4f"):
    return "n/a" if v is None else spec % v


def comparison_rows(c_vals, runs, worst, key):
    """Cells C, A[, B], |C-A|[, |A-B|] for each row of c_vals (None: missing),
    recording the largest differences in worst."""
    rows = []
    for i, cv in enumerate(c_vals):
        t = [r[i] if i < len(r) else None for r in runs]
        dca = abs(cv - t[0]) if cv is not None and t[0] is not None else None
        cells = [fmt(cv)] + [fmt(v) for v in t] + [fmt(dca)]
        if len(runs) > 1:
            dab = abs(t[0] - t[1]) if t[0] is not None and t[1] is not None else None
            cells.append(fmt(dab))
            if dab is not None:
                worst["|A - B| " + key] = max(worst.get("|A - B| " + key, 0.0), dab)
        if dca is not None:
            worst["|C - A| " + key] = max(worst.get("|C - A| " + key, 0.0), dca)
        rows.append(cells)
    return rows


def cmd_table(a):
    """Markdown tables: per epoch, C against the PyTorch runs, and the
    running loss every 100 steps; then the largest differences. Runs still
    going (or stopped) show what they have written so far, n/a elsewhere."""
    c = read_csv(os.path.join(a.c, "history.csv"))
    hists = [read_csv(os.path.join(d, "history.csv")) for d in a.torch]
    c_eval = read_csv(a.c_eval)
    names = ["torch " + "AB"[i] for i in range(len(a.torch))]
    diffs = ["\\|C − A\\|"] + (["\\|A − B\\|"] if len(a.torch) > 1 else [])
    worst = {}
    cols = []
    for key, label in (("loss", "train loss"), ("val_loss", "val loss"), ("val_accuracy", "val acc")):
        cv = [float(r[key]) for r in c] if key != "val_loss" else \
            [float(c_eval[i]["val_loss"]) if i < len(c_eval) else None for i in range(len(c))]
        cols.append((["C " + label] + names + diffs,
                     comparison_rows(cv, [[float(r[key]) for r in h] for h in hists], worst, key)))
    head = ["epoch"] + [h for hs, _ in cols for h in hs]
    print("| " + " | ".join(head) + " |")
    print("|" + "---:|" * len(head))
    for e in range(len(c)):
        print("| " + " | ".join([str(e + 1)] + [x for _, rows in cols for x in rows[e]]) + " |")
    print()
    c_steps = progress_lines(a.c_log)
    t_steps = [progress_lines(os.path.join(d, "train.log")) for d in a.torch]
    keys = sorted(set(c_steps).union(*t_steps))
    if keys:
        print("Running mean of the training loss within each epoch (the progress lines, every 100 steps):")
        print()
        sub = ["C"] + names + diffs
        print("| epoch | step | " + " | ".join(sub) + " |")
        print("|" + "---:|" * (len(sub) + 2))
        rows = comparison_rows([c_steps[k][0] if k in c_steps else None for k in keys],
                               [[t[k][0] if k in t else None for k in keys] for t in t_steps],
                               worst, "running loss")
        for k, cells in zip(keys, rows):
            print("| %d | %d | " % k + " | ".join(cells) + " |")
        print()
    for k in sorted(worst):
        print("largest %s: %.5f" % (k, worst[k]))

    def ips(steps):
        v = [x[1] for x in steps.values()]
        return "%.1f" % float(np.median(v)) if v else "n/a"
    print("images/s of the training steps (median of the progress lines): C %s; %s"
          % (ips(c_steps), ", ".join("%s %s" % (n, ips(t)) for n, t in zip(names, t_steps))))
    finals = [os.path.join(d, "final.npy") for d, h in zip(a.torch, hists) if len(h) == len(c)]
    if a.c_weights and os.path.exists(a.c_weights) and len(finals) == len(a.torch):
        w = [read_emod(a.c_weights)[1].astype(np.float64)] + [np.load(p).astype(np.float64) for p in finals]
        rel = ["||C − A|| / ||A|| %.3g" % (np.linalg.norm(w[0] - w[1]) / np.linalg.norm(w[1]))]
        if len(w) > 2:
            rel.append("||A − B|| / ||A|| %.3g" % (np.linalg.norm(w[2] - w[1]) / np.linalg.norm(w[1])))
        print("final parameters (running statistics included): " + ", ".join(rel))


def cmd_band(a):
    """Per epoch, the range of the train loss over runs that differ only by
    rounding, C's and PyTorch's, and whether the two ranges meet."""
    def losses(dirs):
        hists = [read_csv(os.path.join(d, "history.csv")) for d in dirs]
        n = min(len(h) for h in hists) if hists else 0
        return [[float(h[i]["loss"]) for h in hists] for i in range(n)]
    c, t = losses(a.c), losses(a.torch)
    print("| epoch | C train loss, %d runs | PyTorch, %d runs | ranges meet |" % (len(a.c), len(a.torch)))
    print("|---:|---|---|---|")
    meet = 0
    for i in range(min(len(c), len(t))):
        ok = min(c[i]) <= max(t[i]) and min(t[i]) <= max(c[i])
        meet += ok
        print("| %d | %.4f-%.4f | %.4f-%.4f | %s |"
              % (i + 1, min(c[i]), max(c[i]), min(t[i]), max(t[i]), "yes" if ok else "no"))
    print()
    print("train-loss ranges meet at %d of %d epochs" % (meet, min(len(c), len(t))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train in PyTorch as emotiond train does")
    t.add_argument("--init", required=True, help="the initial model file (.emod)")
    t.add_argument("--data", required=True, help="DIR with train/<class>/ and test/<class>/")
    t.add_argument("--out", required=True, help="output directory")
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--max-train", type=int, default=0, help="first N training images, as emotiond's")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--torch-seed", type=int, default=1, help="torch.manual_seed: the dropout masks")
    t.add_argument("--seed", type=int, default=None, help="the shuffle seed (emotiond's --seed)")
    t.add_argument("--perturb", type=float, default=0.0,
                   help="multiply each initial weight by 1 + X*N(0,1) (X = 6e-8: in float32 that "
                        "is 1 or 1 +- 1 ulp, a rounding-sized nudge; the no-dropout check's noise "
                        "reference)")
    t.add_argument("--batch", type=int, default=None)
    for name in ("lr", "momentum", "weight-decay", "label-smoothing", "nesterov"):
        t.add_argument("--" + name, type=float, default=None, help="default: the architecture's")
    e = sub.add_parser("eval", help="validation loss and accuracy of model files")
    e.add_argument("--data", required=True)
    e.add_argument("--out", required=True, help="CSV to write")
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("models", nargs="+")
    d = sub.add_parser("decode-check", help="PIL against libturbojpeg on every image")
    d.add_argument("--data", required=True)
    tb = sub.add_parser("table", help="markdown tables of a comparison")
    tb.add_argument("--c", required=True, help="emotiond train's output directory")
    tb.add_argument("--torch", required=True, action="append", help="a train output directory (A, then B)")
    tb.add_argument("--c-eval", help="eval's CSV for the C snapshots (validation loss)")
    tb.add_argument("--c-log", help="emotiond train's stderr (running loss every 100 steps)")
    tb.add_argument("--c-weights", help="the C run's final model, compared with torch's final.npy")
    bd = sub.add_parser("band", help="train-loss ranges of C runs and PyTorch runs that "
                                       "differ only by rounding")
    bd.add_argument("--c", required=True, action="append", help="an emotiond train output directory")
    bd.add_argument("--torch", required=True, action="append", help="a train output directory")
    a = ap.parse_args()
    {"train": cmd_train, "eval": cmd_eval, "decode-check": cmd_decode_check, "table": cmd_table,
     "band": cmd_band}[a.cmd](a)


if __name__ == "__main__":
    main()
