"""The one PyTorch twin of the engine: the b-bit quantized ReLU with every STE's backward, and the paper's three nets
(LeNet-5 / MNIST, VGG-11 and ResNet-20 / CIFAR-10, a BN without scale and shift before every quantized ReLU).

Imported by every PyTorch tool of the repository, so that the nets the benchmark times are the nets the parity tests
prove: tools/make_fixtures.py (the parity fixtures), tools/trajectory.py (the long-horizon parity check),
tools/load.py (checkpoints in PyTorch) and tools/peer/ste_torch.py (the benchmark's peer). Needs torch (and numpy, which it brings).

Quantizer (HWGQ-style uniform quantized ReLU, the paper's Sec. 4; exact form from the authors' group code,
penhunt/full-quantization-DNN, nets/quant_uni_type.py): sigma_a(x) = min(ceil(x/a), L) * a for x > 0, L = 2^b - 1
(`rounding="nearest"`: clamp(round(x/a), 0, L) * a). An STE it does not know is refused (ValueError), never replaced.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ALPHA = {1: 1.2221, 2: 0.6511, 4: 0.1946}  # the authors' code's bit_alpha
STES = ("identity", "relu", "clipped", "log-tailed")
ROUNDINGS = ("ceil", "nearest")


# ---------------------------------------------------------------- quantizer (from ste_torch.py)
def f32(v):
    return float(np.float32(v))


def top_of(alpha, levels):
    """L * alpha as a float32 product, the Swift convention (QuantizerSpec.top)."""
    return f32(np.float32(alpha) * np.float32(levels))


def quantize(x, alpha, levels, rounding="ceil"):
    r = torch.ceil(x / alpha) if rounding == "ceil" else torch.round(x / alpha)
    return r.clamp_(0, levels).mul_(alpha)


class QReLUFn(torch.autograd.Function):
    """Uniform b-bit quantized ReLU; backward = derivative of the chosen STE."""

    @staticmethod
    def forward(ctx, x, alpha, levels, ste, rounding):
        ctx.ste, ctx.top = ste, top_of(alpha, levels)
        ctx.save_for_backward(x)
        return quantize(x, alpha, levels, rounding)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if ctx.ste == "identity":  # d/dx x
            return g.clone(), None, None, None, None
        mask = x > 0  # d/dx relu(x)
        if ctx.ste == "relu":
            return g * mask, None, None, None, None
        inside = mask & (x <= ctx.top)  # x == L*a counts as inside (authors' code)
        if ctx.ste == "clipped":
            return g * inside, None, None, None, None
        if ctx.ste == "log-tailed":  # HWGQ: top + log(1 + x - top) above top
            tail = g / (1 + (x - ctx.top))
            return torch.where(inside, g, torch.where(x > ctx.top, tail, torch.zeros_like(g))), None, None, None, None
        raise ValueError(f"unknown STE {ctx.ste!r}: the twin knows {STES}")


class QReLU(nn.Module):
    def __init__(self, bits=4, ste="clipped", alpha=None, rounding="ceil"):
        super().__init__()
        assert ste in STES
        self.alpha, self.levels = f32(alpha or ALPHA[bits]), 2**bits - 1
        self.ste, self.rounding = ste, rounding

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            return QReLUFn.apply(x, self.alpha, self.levels, self.ste, self.rounding)
        return quantize(x, self.alpha, self.levels, self.rounding)


def decision_distance(x, alpha, levels, rounding):
    """min over elements of |x/alpha - nearest decision point| (in units of alpha), float64."""
    r = x.detach().double().flatten() / alpha
    offset = 0.0 if rounding == "ceil" else 0.5
    k = torch.clamp(torch.round(r - offset), 0, levels - 1)
    d = (r - (k + offset)).abs()
    d = torch.minimum(d, r.abs())  # 0 is a kink of every STE
    d = torch.minimum(d, (r - levels).abs())  # top is a kink of clipped / log-tailed
    return float(d.min())


# ---------------------------------------------------------------- nets (from ste_torch.py)
def bn(c, dim=2):  # the paper's BN "without the scale and shift"
    return (nn.BatchNorm2d if dim == 2 else nn.BatchNorm1d)(c, affine=False)


class LeNet5(nn.Module):  # MNIST 1x28x28
    def __init__(self, act):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2, bias=False), bn(6), act(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, bias=False), bn(16), act(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Linear(400, 120, bias=False), bn(120, 1), act(),
            nn.Linear(120, 84, bias=False), bn(84, 1), act(), nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class VGG11(nn.Module):  # CIFAR variant: 8 conv3x3 + one Linear(512, 10); widths / divisor here
    CFG = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]

    def __init__(self, act, divisor=1):
        super().__init__()
        layers, c = [], 3
        for v in self.CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v // divisor, 3, padding=1, bias=False), bn(v // divisor), act()]
                c = v // divisor
        self.features, self.classifier = nn.Sequential(*layers), nn.Linear(512 // divisor, 10)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class BasicBlock(nn.Module):  # He et al. 2016 CIFAR block, option-A (zero-pad) shortcut
    def __init__(self, cin, cout, stride, act):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn1, self.bn2, self.act1, self.act2 = bn(cout), bn(cout), act(), act()
        self.pad = (cout - cin) // 2 if stride != 1 or cin != cout else None

    def forward(self, x):
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        sc = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return self.act2(out + sc)


class ResNet(nn.Module):  # He et al. 2016 CIFAR ResNet of depth 6n + 2: 3 stages of n blocks, widths 16/32/64
    def __init__(self, act, depth, in_channels=3):
        super().__init__()
        assert depth >= 8 and (depth - 2) % 6 == 0, f"a CIFAR ResNet has depth 6n + 2, got {depth}"
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), bn(16), act())
        blocks, c = [], 16
        for w, s in ((16, 1), (32, 2), (64, 2)):
            for i in range((depth - 2) // 6):
                blocks.append(BasicBlock(c, w, s if i == 0 else 1, act))
                c = w
        self.blocks, self.fc = nn.Sequential(*blocks), nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1))


class ResNet20(ResNet):  # the paper's (in_channels 1: Fashion-MNIST padded)
    def __init__(self, act, in_channels=3):
        super().__init__(act, 20, in_channels)


class ResNet32(ResNet):  # the family's next depth: the project's extension, not in the paper
    def __init__(self, act, in_channels=3):
        super().__init__(act, 32, in_channels)
