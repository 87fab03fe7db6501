"""Writes the PyTorch reference fixtures of the Swift engine's parity tests:
Tests/NNTests/Fixtures/layers.h5 (every layer's forward and backward, the quantized ReLU for every
STE x bits x rounding, and an exact-kink table) and Tests/NNTests/Fixtures/nets.h5 (LeNet-5,
ResNet-20 at 8x8 input, VGG-11 with widths / 8: logits, loss, all gradients, parameters and BN
buffers after SGD steps, eval-mode logits).

Run (needs torch, numpy, h5py; not needed by CI or `swift test`, which only read the checked-in files):
    /root/.venv-peer/bin/python tools/make_fixtures.py [--out Tests/NNTests/Fixtures]

The net and quantizer definitions are tools/ste_nets.py's, the one PyTorch twin (the benchmark's peer
imports the same), with the log-tailed STE and a width divisor for VGG-11. Float32, one thread, fixed seeds; files written with track_times=False,
so a rerun with the same torch version gives the same numbers (the torch version is an attribute).
Quantizer inputs are kept away from decision points (asserted): layer cases by >= 1e-3 * alpha,
net cases by >= 1e-4 * alpha (LeNet-5, batch 8: 1e-5 * alpha; seeds are searched until that
holds), so that summation-order differences between PyTorch and Swift cannot flip a level.
"""
import argparse
import os

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ste_nets import (  # noqa: E402,F401  (the one definition of the quantizer and the nets; re-exported)
    ALPHA, STES, ROUNDINGS, QReLUFn, quantize, QReLU, top_of, f32, decision_distance, bn, LeNet5, VGG11, BasicBlock,
    ResNet20, ResNet32)


# ---------------------------------------------------------------- writing
class Writer:
    def __init__(self, path, compress_all=False):
        self.f = h5py.File(path, "w", track_order=False)
        self.compress_all = compress_all  # every array gzip-compressed (the extensions' file: smaller in git)
        # Strings as fixed-length ASCII (np.bytes_): the Swift reader does not take variable-length ones.
        self.f.attrs["torch_version"] = np.bytes_(str(torch.__version__))
        self.f.attrs["generator"] = np.bytes_("tools/make_fixtures.py")
        self.f.attrs["source"] = np.bytes_("net and quantizer definitions of tools/ste_nets.py")

    def put(self, path, t, compress=False):
        a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        kw = dict(compression="gzip", compression_opts=9, shuffle=True) if (compress or self.compress_all) and a.size > 256 else {}
        self.f.create_dataset(path, data=a, track_times=False, **kw)

    def attrs(self, path, **kv):
        g = self.f.require_group(path)
        for k, v in kv.items():
            g.attrs[k] = np.bytes_(v) if isinstance(v, str) else v

    def close(self):
        self.f.close()


def vjp(fn, inputs, out_shape_hint=None, gen=None):
    """y = fn(*inputs); backward of (y * dy).sum() with a fixed random dy. Returns y, dy."""
    y = fn(*inputs)
    dy = torch.randn(y.shape, generator=gen)
    (y * dy).sum().backward()
    return y.detach(), dy


def layer_cases(w, gen):
    r = lambda *s: torch.randn(*s, generator=gen)

    # Conv2d: (name, n, cin, cout, hw, k, s, p, bias)
    for name, n, cin, cout, hw, k, s, p, bias in [
            ("k5_s1_p2", 2, 1, 6, 12, 5, 1, 2, False), ("k5_s1_p0", 2, 3, 4, 10, 5, 1, 0, False),
            ("k3_s1_p1", 2, 3, 5, 8, 3, 1, 1, False), ("k3_s2_p1", 2, 4, 6, 9, 3, 2, 1, False),
            ("k3_s1_p1_bias", 2, 3, 5, 7, 3, 1, 1, True)]:
        conv = nn.Conv2d(cin, cout, k, s, p, bias=bias)
        x = r(n, cin, hw, hw).requires_grad_()
        y, dy = vjp(conv, [x], gen=gen)
        g = f"conv2d/{name}"
        for key, t in [("x", x), ("weight", conv.weight), ("y", y), ("dy", dy), ("dx", x.grad),
                       ("dweight", conv.weight.grad)]:
            w.put(f"{g}/{key}", t)
        if bias:
            w.put(f"{g}/bias", conv.bias)
            w.put(f"{g}/dbias", conv.bias.grad)
        w.attrs(g, in_channels=cin, out_channels=cout, kernel=k, stride=s, padding=p, bias=int(bias))

    for name, bias in [("bias", True), ("nobias", False)]:
        lin = nn.Linear(7, 5, bias=bias)
        x = r(3, 7).requires_grad_()
        y, dy = vjp(lin, [x], gen=gen)
        g = f"linear/{name}"
        for key, t in [("x", x), ("weight", lin.weight), ("y", y), ("dy", dy), ("dx", x.grad),
                       ("dweight", lin.weight.grad)]:
            w.put(f"{g}/{key}", t)
        if bias:
            w.put(f"{g}/bias", lin.bias)
            w.put(f"{g}/dbias", lin.bias.grad)
        w.attrs(g, in_features=7, out_features=5, bias=int(bias))

    for dim, shape in [(2, (4, 3, 5, 5)), (1, (6, 5))]:
        for mode in ("train", "eval"):
            m = bn(shape[1], dim)
            with torch.no_grad():  # non-default running stats, so the momentum update is visible
                m.running_mean.copy_(r(shape[1]) * 0.3)
                m.running_var.copy_(torch.rand(shape[1], generator=gen) + 0.5)
            before = (m.running_mean.clone(), m.running_var.clone())
            m.train(mode == "train")
            x = (r(*shape) * 1.7 + 0.4).requires_grad_()
            y, dy = vjp(m, [x], gen=gen)
            g = f"batchnorm{dim}d/{mode}"
            for key, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad),
                           ("running_mean_before", before[0]), ("running_var_before", before[1]),
                           ("running_mean_after", m.running_mean), ("running_var_after", m.running_var)]:
                w.put(f"{g}/{key}", t)
            w.attrs(g, eps=1e-5, momentum=0.1, affine=0, training=int(mode == "train"))

    x = r(2, 3, 6, 6).requires_grad_()  # continuous values: no ties
    y, dy = vjp(lambda t: F.max_pool2d(t, 2), [x], gen=gen)
    for key, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        w.put(f"maxpool2d/{key}", t)
    w.attrs("maxpool2d", kernel=2, stride=2)
    # Ties, as after a quantized ReLU: PyTorch routes the gradient to the first max in scan order.
    x = quantize(r(2, 3, 6, 6), 0.6511, 3).requires_grad_()
    y, dy = vjp(lambda t: F.max_pool2d(t, 2), [x], gen=gen)
    for key, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        w.put(f"maxpool2d_ties/{key}", t)
    w.attrs("maxpool2d_ties", kernel=2, stride=2)

    x = r(3, 4, 5).requires_grad_()
    y, dy = vjp(F.relu, [x], gen=gen)
    for key, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        w.put(f"relu/{key}", t)

    x = r(2, 4, 3, 3).requires_grad_()
    y, dy = vjp(lambda t: F.adaptive_avg_pool2d(t, 1).flatten(1), [x], gen=gen)
    for key, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        w.put(f"avgpool_global/{key}", t)

    x = r(2, 4, 6, 6).requires_grad_()
    y, dy = vjp(lambda t: F.pad(t[:, :, ::2, ::2], (0, 0, 0, 0, 2, 2)), [x], gen=gen)
    for key, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        w.put(f"shortcut_optionA/{key}", t)
    w.attrs("shortcut_optionA", in_channels=4, out_channels=8, stride=2, pad=2)

    logits = (r(5, 10) * 2).requires_grad_()
    labels = torch.randint(0, 10, (5,), generator=gen)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    for key, t in [("logits", logits), ("labels", labels), ("loss", loss), ("dlogits", logits.grad)]:
        w.put(f"cross_entropy/{key}", t)

    # Quantized ReLU: x spans below 0, the levels and above top; kept >= 1e-3 alpha from every kink.
    for bits in (2, 4):
        alpha, levels = f32(ALPHA[bits]), 2**bits - 1
        for rounding in ROUNDINGS:
            x = r(6, 50) * (levels * alpha / 2) + levels * alpha / 4
            offset = 0.0 if rounding == "ceil" else 0.5
            q = x / alpha
            k = torch.clamp(torch.round(q - offset), 0, levels - 1)
            near = ((q - (k + offset)).abs() < 2e-3) | (q.abs() < 2e-3) | ((q - levels).abs() < 2e-3)
            x = torch.where(near, x + 5e-3 * alpha, x)
            assert decision_distance(x, alpha, levels, rounding) >= 1e-3
            dy = r(6, 50)
            for ste in STES:
                xi = x.clone().requires_grad_()
                y = QReLU(bits, ste, alpha, rounding)(xi)
                (y * dy).sum().backward()
                g = f"qrelu/b{bits}/{rounding}/{ste}"
                for key, t in [("x", x), ("dy", dy), ("y", y), ("dx", xi.grad)]:
                    w.put(f"{g}/{key}", t)
                w.attrs(g, bits=bits, alpha=alpha, rounding=rounding, ste=ste, levels=levels)

    # Optimizers: three steps of torch.optim on one tensor with given gradients.
    for name, make in [
            ("sgd_momentum", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-4)),
            ("sgd_nesterov", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)),
            ("sgd_plain", lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=1e-4)),
            ("adam", lambda ps: torch.optim.Adam(ps, lr=1e-3, weight_decay=1e-4))]:
        w0 = r(20)
        p = nn.Parameter(w0.clone())
        opt = make([p])
        grads, after = r(3, 20), []
        for k in range(3):
            p.grad = grads[k].clone()
            opt.step()
            after.append(p.detach().clone())
        g = f"optim/{name}"
        w.put(f"{g}/w0", w0)
        w.put(f"{g}/grads", grads)
        w.put(f"{g}/after", torch.stack(after))
        hp = opt.param_groups[0]
        w.attrs(g, lr=hp["lr"], weight_decay=hp["weight_decay"], momentum=hp.get("momentum", 0.0),
                nesterov=int(hp.get("nesterov", False)))

    # Exact kinks: 0, each decision point k*alpha (ceil) or (k+1/2)*alpha (nearest), top, and their
    # float32 neighbours. Expected values straight from PyTorch (no margin): the rounding convention.
    for bits in (2, 4):
        alpha, levels = f32(ALPHA[bits]), 2**bits - 1
        a32 = np.float32(alpha)
        points = [np.float32(0), np.float32(top_of(alpha, levels))]
        points += [np.float32(np.float32(k) * a32) for k in range(1, levels + 1)]
        points += [np.float32(np.float32(k + 0.5) * a32) for k in range(0, levels)]
        points += [np.float32(2 * top_of(alpha, levels)), np.float32(-1)]
        xs = sorted({float(v) for p in points for v in
                     (p, np.nextafter(p, np.float32(-np.inf)), np.nextafter(p, np.float32(np.inf)))})
        x = torch.tensor(xs, dtype=torch.float32)
        for rounding in ROUNDINGS:
            g = f"qrelu_kinks/b{bits}/{rounding}"
            w.put(f"{g}/x", x)
            w.put(f"{g}/y", quantize(x.clone(), alpha, levels, rounding))
            for ste in STES:
                xi = x.clone().requires_grad_()
                QReLU(bits, ste, alpha, rounding)(xi).backward(torch.ones_like(x))
                w.put(f"{g}/dx_{ste}", xi.grad)
            w.attrs(g, bits=bits, alpha=alpha, rounding=rounding, levels=levels)


# ---------------------------------------------------------------- nets
def make_act(variant):
    """'float' -> nn.ReLU; 'a2-clipped-ceil' -> QReLU(2, 'clipped', rounding='ceil')."""
    if variant == "float":
        return nn.ReLU
    bits_s, rest = variant.split("-", 1)
    ste, rounding = rest.rsplit("-", 1)
    return lambda: QReLU(int(bits_s[1:]), ste, rounding=rounding)


def qrelu_inputs_ok(model, run, margin):
    """Runs `run()` with hooks on every QReLU; True if every input is >= margin*alpha from a kink."""
    worst = [float("inf")]

    def hook(m, inp, _):
        worst[0] = min(worst[0], decision_distance(inp[0], m.alpha, m.levels, m.rounding))
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, QReLU)]
    try:
        run()
    finally:
        for h in hs:
            h.remove()
    return worst[0] >= margin, worst[0]


def net_case(w, net, ctor, shape, batch, init_state, variant, steps, margin=1e-4, max_tries=3000, keep_after=True):
    """Finds an input seed whose QReLU inputs stay >= margin*alpha from kinks during the whole case,
    then writes the case under /<net>/<variant>."""
    for seed in range(max_tries):
        torch.manual_seed(1000 + seed)
        x = torch.randn(batch, *shape)
        labels = torch.randint(0, 10, (batch,))
        model = ctor(make_act(variant))
        model.load_state_dict(init_state)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        record = {}

        def run():
            for step in range(steps):
                model.train()
                opt.zero_grad(set_to_none=True)
                logits = model(x)
                loss = F.cross_entropy(logits, labels)
                loss.backward()
                if step == 0:
                    record["logits"], record["loss"] = logits.detach().clone(), loss.detach().clone()
                    record["grads"] = {k: p.grad.clone() for k, p in model.named_parameters()}
                else:
                    record[f"loss{step + 1}"] = loss.detach().clone()
                opt.step()
                sd = model.state_dict()
                sfx = "" if step == 0 else str(step + 1)
                record["params_after" + sfx] = {k: p.detach().clone() for k, p in model.named_parameters()}
                record["buffers_after" + sfx] = {k: v.clone() for k, v in sd.items()
                                                 if "running" in k}
                if step == 0:
                    model.eval()
                    with torch.no_grad():
                        record["eval_logits"] = model(x).clone()
        if variant == "float":
            run()
            ok, worst = True, None
        else:
            ok, worst = qrelu_inputs_ok(model, run, margin)
        if ok:
            break
    else:
        raise SystemExit(f"{net}/{variant}: no seed in {max_tries} keeps QReLU inputs {margin} alpha from kinks")
    g = f"{net}/{variant}"
    w.put(f"{g}/x", x)
    w.put(f"{g}/labels", labels)
    for key in ("logits", "loss", "eval_logits") + tuple(f"loss{s + 1}" for s in range(1, steps)):
        w.put(f"{g}/{key}", record[key])
    # keep_after False (the extensions): the step's forward and gradients only; the SGD update that follows is the
    # same code the paper's nets' fixtures prove, and leaving it out keeps the file small.
    for group in ["grads"] + ([k for k in record if k.startswith(("params_after", "buffers_after"))] if keep_after else []):
        for k, t in record[group].items():
            w.put(f"{g}/{group}/{k}", t, compress=True)
    attrs = dict(seed=1000 + seed, steps=steps, lr=0.1, momentum=0.9, weight_decay=1e-4, batch=batch)
    if variant != "float":
        act = make_act(variant)()
        attrs.update(bits=int(variant[1]), alpha=act.alpha, ste=act.ste, rounding=act.rounding,
                     min_kink_distance_in_alpha=worst, kink_margin_in_alpha=margin)
    w.attrs(g, **attrs)
    print(f"  {g}: seed {1000 + seed}, loss {record['loss'].item():.4f}"
          + (f", nearest kink {worst:.2e} alpha" if worst is not None else ""))


NET_CASES = [
    # (group, ctor, input shape, batch, kink margin in alpha, variants with their SGD step counts)
    # LeNet-5 needs batch 8: with batch 2 its BatchNorm1d backward cancels catastrophically (x̂ = ±1)
    # and float32 noise dominates the gradients; its kink margin is then 1e-5 alpha (more activations).
    ("lenet5", LeNet5, (1, 28, 28), 8, 1e-5, [("a2-clipped-ceil", 2), ("float", 1), ("a4-relu-nearest", 1)]),
    ("resnet20", ResNet20, (3, 8, 8), 2, 1e-4, [("a2-clipped-ceil", 1)]),
    ("vgg11_w8", lambda act: VGG11(act, divisor=8), (3, 32, 32), 2, 1e-4, [("a4-identity-ceil", 1)]),
]
# Nets beyond the paper's (the project's extensions), in a file of their own so that adding one leaves nets.h5 alone.
EXTENSION_CASES = [
    ("resnet32", ResNet32, (3, 8, 8), 2, 1e-5, [("a2-clipped-ceil", 1)]),  # more activations: margin 1e-5 alpha, as LeNet-5
]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "NNTests", "Fixtures"))
    p.add_argument("--extensions-only", action="store_true", help="write nets-extensions.h5 only (the nets beyond the paper's)")
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(a.out, exist_ok=True)

    if not a.extensions_only:
        w = Writer(os.path.join(a.out, "layers.h5"))
        torch.manual_seed(7)  # the layers' default initialisation draws from the global generator
        layer_cases(w, torch.Generator().manual_seed(7))
        w.close()

    files = [("nets-extensions.h5", EXTENSION_CASES)] if a.extensions_only else [("nets.h5", NET_CASES),
                                                                                 ("nets-extensions.h5", EXTENSION_CASES)]
    for name, cases in files:
        w = Writer(os.path.join(a.out, name), compress_all=name == "nets-extensions.h5")
        for net, ctor, shape, batch, margin, variants in cases:
            torch.manual_seed(42)
            init = ctor(nn.ReLU)
            state = init.state_dict()
            for k, v in state.items():
                if "num_batches_tracked" not in k:
                    w.put(f"{net}/{'buffers' if 'running' in k else 'params'}/{k}", v, compress=True)
            w.attrs(net, input_shape=list(shape), batch=batch,
                    parameter_count=sum(p.numel() for p in init.parameters()))
            print(f"{net}: {sum(p.numel() for p in init.parameters())} parameters")
            for variant, steps in variants:
                net_case(w, net, ctor, shape, batch, state, variant, steps, margin=margin, keep_after=cases is NET_CASES)
        w.close()
    for name in ("layers.h5", "nets.h5", "nets-extensions.h5"):
        if os.path.exists(os.path.join(a.out, name)):
            print(f"{name}: {os.path.getsize(os.path.join(a.out, name)) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
