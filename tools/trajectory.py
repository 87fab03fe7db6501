"""Long-horizon parity between our engine and the PyTorch twin (tools/ste_nets.py).

Both engines start from the same state and train on the same sequence of already-augmented batches (Fashion-MNIST
padded to 32x32, RandomCrop(32, padding=4) + horizontal flip, the project's normalisation) for hundreds of SGD
steps; every `record_every` steps both record the running statistics, the parameter and gradient norms and an
eval-mode pass over a fixed set. A one-step fixture cannot see a defect that builds up over many steps (a running
statistic, a mask that is only wrong at trained states); this can. Summation orders differ, so the two
trajectories drift apart like two seeds of one engine; the check therefore compares *statistics* of the
trajectories (the mean training loss over windows, the eval accuracy, running statistics) within tolerances
stated below, and a second PyTorch run with a perturbed start gives the scale of that drift.

    python tools/trajectory.py --bits 4 --ste relu --steps 400          # prints the comparison, exit 1 on FAIL
    python tools/trajectory.py --init results/.../checkpoint.h5 ...     # start from one of our checkpoints
"""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ste_nets as mf  # noqa: E402  (the one PyTorch definition of the nets and the quantizer)

MEAN, STD = 0.2860, 0.3530  # experiments/fashion.yaml normalize
# LUT[p] = (p / 255 - mean) / std in float32: torchvision's ToTensor + Normalize, as our batcher computes it
LUT = ((np.arange(256, dtype=np.float32) / np.float32(255) - np.float32(MEAN)) / np.float32(STD)).astype(np.float32)


def evaluate(net, ex, ey, batch=500):
    """Eval-mode summed cross-entropy over (ex, ey) divided by its size, and the correct count; leaves `net` in train
    mode (both callers train next)."""
    net.eval()
    loss, right = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(ex), batch):
            z = net(ex[s:s + batch])
            loss += float(torch.nn.functional.cross_entropy(z, ey[s:s + batch], reduction="sum"))
            right += int((z.argmax(1) == ey[s:s + batch]).sum())
    net.train()
    return loss / len(ex), right


def batches(images, labels, steps, batch, rng):
    """`steps` batches of `batch` images drawn with replacement-free epochs: pad 28->32, crop 4, flip, normalise."""
    n = len(images)
    padded = np.zeros((n, 40, 40), np.uint8)  # 28 + 2*2 (to 32) + 2*4 (crop padding)
    padded[:, 6:34, 6:34] = images
    xs = np.empty((steps, batch, 1, 32, 32), np.float32)
    ys = np.empty((steps, batch), np.int32)
    order = np.empty(0, np.int64)
    for s in range(steps):
        if len(order) < batch:
            order = np.concatenate([order, rng.permutation(n)])
        idx, order = order[:batch], order[batch:]
        for r, i in enumerate(idx):
            top, left, flip = rng.integers(0, 9), rng.integers(0, 9), rng.random() < 0.5
            crop = padded[i, top:top + 32, left:left + 32]
            xs[s, r, 0] = LUT[crop[:, ::-1] if flip else crop]
        ys[s] = labels[idx]
    return xs, ys


def eval_set(images, labels):
    x = np.zeros((len(images), 1, 32, 32), np.float32)
    x[:, 0] = LUT[np.pad(images, ((0, 0), (2, 2), (2, 2)))]
    return x, labels.astype(np.int32)


def make_net(bits, ste):
    act = (lambda: torch.nn.ReLU()) if bits == 0 else (lambda: mf.QReLU(bits, ste, rounding="ceil"))
    return mf.ResNet20(act, in_channels=1)


def torch_run(path, perturb=0.0, seed=0, inject=None):
    """The PyTorch side of `path`'s trajectory: the same record as `ste replay`. `inject` plants a defect in this
    side (bn-momentum: 0.2 instead of 0.1; ste: the identity STE; lr: 3x the rate), to show the check catches one."""
    f = h5py.File(path, "r")
    a = f.attrs
    torch.manual_seed(seed)
    net = make_net(int(a["bits"]), "identity" if inject == "ste" else bytes(a["ste"]).decode())
    if inject == "bn-momentum":
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.2
    state = {}
    for k in net.state_dict():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(0)
            continue
        group = "params" if k in dict(net.named_parameters()) else "buffers"
        layer, name = k.rsplit(".", 1)
        t = torch.from_numpy(f[f"/{group}/{layer}/{name}"][()])
        if perturb and group == "params":
            t = t * (1 + perturb * torch.randn_like(t))
        state[k] = t
    net.load_state_dict(state)
    opt = torch.optim.SGD(net.parameters(), lr=float(a["lr"]) * (3 if inject == "lr" else 1),
                          momentum=float(a["momentum"]), weight_decay=float(a["weight_decay"]))
    xs, ys = f["/batches/x"], f["/batches/labels"][()]
    ex, ey = torch.from_numpy(f["/eval/x"][()]), torch.from_numpy(f["/eval/labels"][()]).long()
    every = int(a["record_every"])
    rec = {"loss": [], "correct": [], "step": [], "eval_loss": [], "eval_correct": [], "buffers": {}, "param_norm": {},
           "grad_norm": {}}

    def record(step):
        rec["step"].append(step)
        for k, v in net.state_dict().items():
            if "running" in k:
                rec["buffers"].setdefault(k, []).append(v.numpy().copy())
        for k, p in net.named_parameters():
            rec["param_norm"].setdefault(k, []).append(float(p.detach().double().norm()))
            rec["grad_norm"].setdefault(k, []).append(0.0 if step == 0 else float(p.grad.double().norm()))
        loss, right = evaluate(net, ex, ey)
        rec["eval_loss"].append(loss)
        rec["eval_correct"].append(right)

    net.train()
    record(0)
    rows = f["/batches/rows"][()] if "/batches/rows" in f else [ys.shape[1]] * len(ys)
    for s in range(len(ys)):
        x, y = torch.from_numpy(xs[s][: rows[s]]), torch.from_numpy(ys[s][: rows[s]]).long()
        opt.zero_grad()
        z = net(x)
        loss = torch.nn.functional.cross_entropy(z, y)
        loss.backward()
        opt.step()
        rec["loss"].append(float(loss.detach()))
        rec["correct"].append(int((z.argmax(1) == y).sum()))
        if (s + 1) % every == 0 or s + 1 == len(ys):
            record(s + 1)
    return rec


def ours(path, out, ste_bin, threads):
    subprocess.run([ste_bin, "replay", path, "--out", out, "--threads", str(threads)], check=True)
    f = h5py.File(out, "r")
    rec = {"loss": list(f["/loss"][()]), "correct": list(f["/correct"][()]), "step": list(f["/record/step"][()]),
           "eval_loss": list(f["/record/eval_loss"][()]), "eval_correct": list(f["/record/eval_correct"][()]),
           "buffers": {}, "param_norm": {}, "grad_norm": {}}

    def walk(group, key, per_record):
        for layer in f[group]:
            for name in f[f"{group}/{layer}"]:
                v = f[f"{group}/{layer}/{name}"][()]
                rec[key][f"{layer}.{name}"] = list(v) if not per_record else [row for row in v]

    walk("/record/buffers", "buffers", True)
    walk("/record/param_norm", "param_norm", False)
    walk("/record/grad_norm", "grad_norm", False)
    return rec


def write_input(path, args, state):
    f = h5py.File(path, "w")
    data = h5py.File(args.data, "r")
    rng = np.random.default_rng(args.seed)
    tr_x, tr_y = data["/train/images"][: args.train_subset], data["/train/labels"][: args.train_subset]
    xs, ys = batches(tr_x, tr_y, args.steps, args.batch, rng)
    ex, ey = eval_set(data["/test/images"][: args.eval], data["/test/labels"][: args.eval])
    f["/batches/x"], f["/batches/labels"], f["/eval/x"], f["/eval/labels"] = xs, ys, ex, ey
    if args.short_every:  # every short_every-th step uses half its rows, as an epoch's last batch does
        f["/batches/rows"] = np.array([args.batch // 2 if (s + 1) % args.short_every == 0 else args.batch
                                       for s in range(args.steps)], np.int32)
    for k, v in state.items():
        if k.endswith("num_batches_tracked"):
            continue
        layer, name = k.rsplit(".", 1)
        group = "buffers" if "running" in name else "params"
        f[f"/{group}/{layer}/{name}"] = v.numpy().astype(np.float32)
    f.attrs.update(input_channels=1, bits=args.bits, alpha=mf.f32(mf.ALPHA.get(args.bits, 1.0)), lr=args.lr,
                   momentum=0.9, weight_decay=1e-4, record_every=args.record_every)
    for k, v in dict(network="resnet20", ste=args.ste, rounding="ceil").items():
        f.attrs[k] = np.bytes_(v)  # fixed-length strings, as our files write them
    f.close()


def initial_state(args):
    torch.manual_seed(args.seed)
    net = make_net(args.bits, args.ste)
    if args.init:
        f = h5py.File(args.init, "r")
        state = {}
        for k, v in net.state_dict().items():
            if k.endswith("num_batches_tracked"):
                state[k] = v
                continue
            layer, name = k.rsplit(".", 1)
            group = "buffers" if "running" in name else "params"
            state[k] = torch.from_numpy(f[f"/{group}/{layer}/{name}"][()])
        return state
    return net.state_dict()


def summarise(a, b, every, label_a="ours", label_b="torch"):
    n = len(a["loss"])
    w = max(1, n // 8)
    print(f"{'steps':>11} | {label_a + ' loss':>10} | {label_b + ' loss':>10} | {label_a + ' acc':>8} | {label_b + ' acc':>8}")
    for s in range(0, n, w):
        la, lb = np.mean(a["loss"][s:s + w]), np.mean(b["loss"][s:s + w])
        ca = 100 * np.sum(a["correct"][s:s + w]) / (w * 128)
        cb = 100 * np.sum(b["correct"][s:s + w]) / (w * 128)
        print(f"{s:>5}-{s + w:<5} | {la:>10.4f} | {lb:>10.4f} | {ca:>8.2f} | {cb:>8.2f}")
    print("record step | eval acc ours | torch | eval loss ours | torch")
    for i, s in enumerate(a["step"]):
        print(f"{s:>11} | {a['eval_correct'][i]:>13} | {b['eval_correct'][i]:>5} | {a['eval_loss'][i]:>14.4f} | "
              f"{b['eval_loss'][i]:.4f}")


def protocol(args):
    """The PyTorch twin trained on a run's own batches (`ste batches`) from a given state, on the run's schedule:
    per-epoch training loss / accuracy and test accuracy / loss, to set beside the run's history.h5."""
    data = h5py.File(args.data, "r")
    draws = h5py.File(args.batches, "r")
    n_train = int(draws.attrs["train_count"])
    batch = int(draws.attrs["batch_size"])
    images = np.zeros((n_train, 40, 40), np.uint8)  # 28 -> 32 (pad_to), + 4 each side (crop padding)
    images[:, 6:34, 6:34] = data["/train/images"][:n_train]
    labels = data["/train/labels"][:n_train].astype(np.int64)
    ex, ey = eval_set(data["/test/images"][: args.eval], data["/test/labels"][: args.eval])
    ex, ey = torch.from_numpy(ex), torch.from_numpy(ey).long()
    state = initial_state(args)
    torch.manual_seed(args.seed)
    net = make_net(args.bits, args.ste)
    net.load_state_dict(state)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4)
    rows = []
    for epoch in range(args.epochs):
        lr = args.lr * 0.1 ** sum(m <= epoch for m in args.milestones)
        for g in opt.param_groups:
            g["lr"] = lr
        e = draws[f"epoch{epoch}"]
        index, top, left, flip = e["index"][()], e["top"][()], e["left"][()], e["flip"][()]
        net.train()
        loss_sum, right = 0.0, 0
        for b in range(0, n_train, batch):
            sl = slice(b, min(b + batch, n_train))
            x = np.empty((sl.stop - sl.start, 1, 32, 32), np.float32)
            for r, i in enumerate(index[sl]):
                t, l = top[sl][r] + 4, left[sl][r] + 4
                crop = images[i, t:t + 32, l:l + 32]
                x[r, 0] = LUT[crop[:, ::-1] if flip[sl][r] else crop]
            y = torch.from_numpy(labels[index[sl]])
            opt.zero_grad()
            z = net(torch.from_numpy(x))
            loss = torch.nn.functional.cross_entropy(z, y)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(y)
            right += int((z.argmax(1) == y).sum())
        tl, tr = evaluate(net, ex, ey)
        rows.append((epoch + 1, loss_sum / n_train, 100 * right / n_train, 100 * tr / len(ex), tl, lr))
        print("epoch %2d  loss %.4f  acc %.2f  test %.2f  test loss %.4f  lr %g" % rows[-1], flush=True)
    return rows


def warm_float_state(args, steps=300):
    """The state the quantized cells start from, in small: the float ResNet-20 trained `steps` SGD steps
    (lr 0.05, PyTorch, batches of their own seed) from PyTorch's initialisation. From a random initialisation the
    first hundreds of quantized steps fall fast and the two trajectories' loss averages scatter by more than any
    useful tolerance; from a trained float state, as in the protocol, they agree to a few thousandths."""
    torch.manual_seed(args.seed)
    net = make_net(0, "relu")
    data = h5py.File(args.data, "r")
    rng = np.random.default_rng(args.seed + 1000)
    xs, ys = batches(data["/train/images"][: args.train_subset], data["/train/labels"][: args.train_subset], steps,
                     args.batch, rng)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    net.train()
    for s in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(xs[s])), torch.from_numpy(ys[s]).long()).backward()
        opt.step()
    return net.state_dict()


def check(args):
    """The long-horizon parity check (make parity): both engines from one state on the same batches.
    A. Fixed weights (lr 0), 2 epochs of 63 steps each ending in a half batch: the running statistics and an
       eval pass after each epoch. Both engines' batch statistics must agree step after step, so after 126 EMA
       updates every running mean is within 0.25 % of its channel's std and every running variance within 0.8 %,
       the eval accuracy within 1 % of the eval set and the eval loss within 2 %. (Measured: means 0.03-0.11 %,
       variances 0.07-0.37 %, eval 0-2 images of 1,000; with the twin's batch-norm momentum at 0.2 instead of 0.1:
       means 0.5 %, variances 1.5-2.6 %.)
    B. Training (lr 0.01), 200 steps: the trajectories part (a 4-bit quantizer turns one rounding difference into
       an avalanche), so their statistics are compared: the mean training loss of steps 101-200 within 0.03 and
       the mean training accuracy within 2 points. (Measured: 0.0024 and 0.3 points from a trained float parent.)
    Both start from a float net trained briefly in PyTorch (warm_float_state), or from --init.
    Exit 1 when any criterion fails. `--inject` plants a defect in the PyTorch side; the check must then fail."""
    results, failures = [], []

    def judge(name, value, limit):
        ok = value <= limit
        results.append(f"{'ok  ' if ok else 'FAIL'} {name}: {value:.4g} (limit {limit:g})")
        if not ok:
            failures.append(name)

    work = args.work or tempfile.mkdtemp(prefix="parity-")
    os.makedirs(work, exist_ok=True)
    state = initial_state(args) if args.init else warm_float_state(args)
    # A: fixed weights
    a_args = argparse.Namespace(**{**vars(args), "lr": 0.0, "steps": 126, "record_every": 63, "short_every": 63})
    path = os.path.join(work, "fixed.h5")
    write_input(path, a_args, state)
    a = ours(path, os.path.join(work, "fixed-ours.h5"), args.ste_bin, args.threads)
    b = torch_run(path, inject=args.inject)
    n_eval = len(h5py.File(path, "r")["/eval/labels"])
    for i, step in enumerate(a["step"][1:], start=1):
        mean_shift = var_ratio = 0.0
        for k in b["buffers"]:
            if not k.endswith("running_mean"):
                continue
            var_b = np.array(b["buffers"][k.replace("mean", "var")][i], np.float64)
            mean_shift = max(mean_shift, float(np.max(np.abs(np.array(a["buffers"][k][i]) - b["buffers"][k][i]) / np.sqrt(var_b))))
            var_a = np.array(a["buffers"][k.replace("mean", "var")][i], np.float64)
            var_ratio = max(var_ratio, float(np.max(np.abs(var_a / var_b - 1))))
        judge(f"A step {step}: running means, max |diff| / std", mean_shift, 0.0025)
        judge(f"A step {step}: running variances, max |ratio - 1|", var_ratio, 0.008)
        judge(f"A step {step}: eval accuracy difference (fraction of {n_eval})",
              abs(a["eval_correct"][i] - b["eval_correct"][i]) / n_eval, 0.01)
        judge(f"A step {step}: eval loss, relative difference", abs(a["eval_loss"][i] / b["eval_loss"][i] - 1), 0.02)
    # B: training
    b_args = argparse.Namespace(**{**vars(args), "lr": 0.01, "steps": 200, "record_every": 100, "short_every": 0})
    path = os.path.join(work, "train.h5")
    write_input(path, b_args, state)
    a = ours(path, os.path.join(work, "train-ours.h5"), args.ste_bin, args.threads)
    b = torch_run(path, inject=args.inject)
    judge("B steps 101-200: mean training loss difference", abs(np.mean(a["loss"][100:]) - np.mean(b["loss"][100:])), 0.03)
    judge("B steps 101-200: mean training accuracy difference (points)",
          abs(np.mean(a["correct"][100:]) - np.mean(b["correct"][100:])) * 100 / args.batch, 2.0)
    print("\n".join(results))
    print(f"parity: {len(results) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bits", type=int, default=4, help="0: float activations")
    p.add_argument("--ste", default="relu")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--record-every", type=int, default=50)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-subset", type=int, default=8000)
    p.add_argument("--eval", type=int, default=1000)
    p.add_argument("--init", help="one of our checkpoints to start from (default: PyTorch's init at --seed)")
    p.add_argument("--data", default="data/fashion-mnist.h5")
    p.add_argument("--ste-bin", default=".build/release/ste")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", default=None)
    p.add_argument("--short-every", type=int, default=0, help="every N-th step takes a half batch (an epoch's last)")
    p.add_argument("--protocol", action="store_true",
                   help="train the PyTorch twin on a run's own batches (--batches, from `ste batches`) for --epochs")
    p.add_argument("--batches", help="`ste batches` output (with --protocol)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--milestones", type=int, nargs="*", default=[8, 14])
    p.add_argument("--check", action="store_true", help="the long-horizon parity check (make parity); exit 1 on FAIL")
    p.add_argument("--inject", choices=["bn-momentum", "ste", "lr"], help="plant a defect in the PyTorch side")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.check:
        sys.exit(check(args))
    if args.protocol:
        protocol(args)
        return
    work = args.work or tempfile.mkdtemp(prefix="trajectory-")
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "input.h5")
    write_input(path, args, initial_state(args))
    a = ours(path, os.path.join(work, "ours.h5"), args.ste_bin, args.threads)
    b = torch_run(path)
    summarise(a, b, args.record_every)


if __name__ == "__main__":
    main()
