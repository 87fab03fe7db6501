"""Read ste-repro results from Python: the tables `ste report` writes, and checkpoints as PyTorch nets.

    import sys; sys.path.insert(0, "tools")
    import load
    runs = load.runs("results")            # results/runs.csv: one row per run (config columns, final metrics)
    hist = load.histories("results")       # results/histories.csv: one row per run and epoch
    net = load.checkpoint("results/runs/lenet5-a2-clipped-s0/checkpoint.h5")   # a torch.nn.Module in eval mode

Tables come back as a pandas DataFrame when pandas is installed, else as a list of dicts (numbers as floats).
Checkpoints load into the PyTorch definitions of tools/ste_nets.py (the nets the engine's parity tests are
checked against): LeNet-5 (the classic 6-16-120-84 layout), VGG-11 and ResNet-20 with one or three input channels,
float or quantized ReLU (bits, STE, alpha and rounding read from the checkpoint). Needs torch, numpy and h5py for
checkpoints (`make peer` installs them in ~/.venv-peer).

    python tools/load.py --check results/smoke/runs/lenet5-a2-clipped-s0  [--data data/mnist.h5]

loads that run's checkpoint, evaluates it on the run's test images with PyTorch and compares the number of correct
predictions with the run's eval.h5: exit status 0 when they agree within --tolerance images (default 1: an
activation exactly on a quantizer step can round either way in float32 sums of another order).
"""
import argparse
import csv
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _table(path):
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        return pd.read_csv(path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for k, v in row.items():
            try:
                row[k] = float(v)
            except (TypeError, ValueError):
                pass
    return rows


def runs(root="results"):
    """<root>/runs.csv as a DataFrame (or a list of dicts without pandas)."""
    return _table(os.path.join(root, "runs.csv"))


def histories(root="results"):
    """<root>/histories.csv as a DataFrame (or a list of dicts without pandas)."""
    return _table(os.path.join(root, "histories.csv"))


def _fletcher32(data):
    """HDF5's Fletcher-32 (H5_checksum_fletcher32), for the scalars our files carry it for as an attribute."""
    sum1 = sum2 = 0
    words = len(data) // 2
    i = 0
    while words:
        run = min(words, 360)
        words -= run
        for _ in range(run):
            sum1 += (data[i] << 8) | data[i + 1]
            sum2 += sum1
            i += 2
        sum1, sum2 = (sum1 & 0xFFFF) + (sum1 >> 16), (sum2 & 0xFFFF) + (sum2 >> 16)
    if len(data) % 2:
        sum1 += data[i] << 8
        sum2 += sum1
        sum1, sum2 = (sum1 & 0xFFFF) + (sum1 >> 16), (sum2 & 0xFFFF) + (sum2 >> 16)
    sum1, sum2 = (sum1 & 0xFFFF) + (sum1 >> 16), (sum2 & 0xFFFF) + (sum2 >> 16)
    return (sum2 << 16) | sum1


def read(dataset):
    """A dataset's values with its checksum verified (HDF5's Fletcher32 filter, or a scalar's `fletcher32`
    attribute), a mismatch raised as an error that names the file and the dataset."""
    where = f"{dataset.file.filename}: {dataset.name}"
    try:
        value = dataset[()]
    except OSError as e:
        if dataset.fletcher32:
            raise ValueError(f"{where}: checksum mismatch (the file changed after it was written)") from e
        raise ValueError(f"{where}: reading the data failed: {e}") from e
    if dataset.shape == () and "fletcher32" in dataset.attrs:
        import numpy as np
        if _fletcher32(np.asarray(value).tobytes()) != int(dataset.attrs["fletcher32"]) & 0xFFFFFFFF:
            raise ValueError(f"{where}: checksum mismatch (the file changed after it was written)")
    return value


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def checkpoint(path):
    """The net of a checkpoint.h5 (pretrain or train) as a torch.nn.Module in eval mode, and its run config."""
    import h5py
    import numpy as np
    import torch
    import torch.nn as nn

    sys.path.insert(0, HERE)
    import ste_nets as fx

    with h5py.File(path, "r") as f:
        config = json.loads(_text(f.attrs["configuration"]))
        params = {}
        for group in ("params", "buffers"):
            def visit(name, obj, group=group):
                if isinstance(obj, h5py.Dataset):
                    value = read(obj)
                    if not np.isfinite(value).all():
                        raise ValueError(f"{path}: {obj.name}: holds a non-finite value (the file was changed or damaged)")
                    params[name.replace("/", ".")] = torch.from_numpy(value)
            f[group].visititems(visit)
    act_spec = config.get("activation", {})
    if act_spec.get("ste"):
        bits, ste = int(act_spec["bits"]), act_spec["ste"]
        ste = {"log_tailed": "log-tailed"}.get(ste, ste)
        act = lambda: fx.QReLU(bits, ste, alpha=float(act_spec["alpha"]), rounding=act_spec.get("rounding", "ceil"))
    else:
        act = nn.ReLU
    name = config["net"]
    if name == "lenet5":
        if config.get("lenet5Widths"):
            raise ValueError(f"{path}: LeNet-5 widths {config['lenet5Widths']}: only the classic layout is defined in Python")
        net = fx.LeNet5(act)
    elif name == "vgg11":
        net = fx.VGG11(act)
    elif name == "resnet20":
        net = fx.ResNet20(act)
    else:
        raise ValueError(f"{path}: unknown net {name!r}")
    first = {"lenet5": "features.0", "vgg11": "features.0", "resnet20": "stem.0"}[name]
    channels = params[first + ".weight"].shape[1]
    if channels != 3 and name in ("vgg11", "resnet20"):  # one-channel data (Fashion-MNIST): the first conv differs
        parent = net.get_submodule(first.split(".")[0])
        old = parent[0]
        parent[0] = nn.Conv2d(channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
    state = net.state_dict()
    missing = [k for k in state if k not in params and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in params if k not in state]
    if missing or unexpected:
        raise ValueError(f"{path}: tensors missing {missing}, unexpected {unexpected}")
    net.load_state_dict(params, strict=False)
    return net.eval(), config


def _check(run_dir, data, tolerance):
    import h5py
    import numpy as np
    import torch

    torch.set_num_threads(1)
    net, config = checkpoint(os.path.join(run_dir, "checkpoint.h5"))
    with h5py.File(os.path.join(run_dir, "eval.h5"), "r") as f:
        correct, total = int(read(f["test_correct"])), int(read(f["test_total"]))
    with h5py.File(data or config["data"], "r") as f:
        images = read(f["test/images"])[:total].astype(np.float32) / 255.0
        labels = read(f["test/labels"])[:total].astype(np.int64)
    x = torch.from_numpy(images).unsqueeze(1)
    pad = config.get("padTo")
    if pad:
        p = (pad - x.shape[-1]) // 2
        x = torch.nn.functional.pad(x, (p, pad - x.shape[-1] - p, p, pad - x.shape[-1] - p))
    mean = torch.tensor(config["mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(config["std"], dtype=torch.float32).view(1, -1, 1, 1)
    with torch.no_grad():
        ours = int((net((x - mean) / std).argmax(1) == torch.from_numpy(labels)).sum())
    print(f"{run_dir}: PyTorch {ours}/{total} correct, the run's eval.h5 {correct}/{total}")
    return abs(ours - correct) <= tolerance


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", metavar="RUN_DIR", required=True, help="run folder with checkpoint.h5 and eval.h5")
    ap.add_argument("--data", help="dataset file (default: the one in the run's configuration)")
    ap.add_argument("--tolerance", type=int, default=1)
    args = ap.parse_args()
    sys.exit(0 if _check(args.check, args.data, args.tolerance) else 1)
