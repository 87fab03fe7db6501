"""Curves of a results folder in TensorBoard: writes one event file per run from the folder's histories.csv (every
finished run) and from each run's progress.csv (runs still training), with nothing but the standard library.

    python3 tools/tensorboard.py results/fashion/cpu-budget --out tb      # then: tensorboard --logdir tb

Each run becomes tb/<run id>/ with the scalars train/loss, train/accuracy, test/loss, test/accuracy, learning_rate and
images_per_second against the epoch. Rerun it to refresh (the files are rewritten). The event file format is
TensorFlow's TFRecord of `Event` protocol buffers (wall_time, step, summary {value {tag, simple_value}}), each record
framed by its length and masked CRC-32C checksums; both are written by hand below.
"""
import argparse
import csv
import glob
import os
import struct
import time

# ---------------------------------------------------------------- CRC-32C (Castagnoli), as TFRecord frames need
_POLY = 0x82F63B78
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ---------------------------------------------------------------- the few protocol-buffer fields an Event needs
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, wire_type, payload):
    return varint((number << 3) | wire_type) + payload


def length_delimited(number, data):
    return field(number, 2, varint(len(data)) + data)


def event(wall_time, step, tag=None, value=None, file_version=None):
    """Event: 1 wall_time (double), 2 step (int64), 3 file_version (string), 5 summary (Summary)."""
    out = field(1, 1, struct.pack("<d", wall_time)) + field(2, 0, varint(step))
    if file_version is not None:
        out += length_delimited(3, file_version.encode())
    if tag is not None:
        # Summary: 1 value (Summary.Value: 1 tag (string), 2 simple_value (float)).
        v = length_delimited(1, tag.encode()) + field(2, 5, struct.pack("<f", value))
        out += length_delimited(5, length_delimited(1, v))
    return out


def record(data):
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))


# ---------------------------------------------------------------- results folder → event files
SCALARS = [("train_loss", "train/loss"), ("train_accuracy", "train/accuracy"), ("test_loss", "test/loss"),
           ("test_accuracy", "test/accuracy"), ("learning_rate", "learning_rate"), ("images_per_second", "images_per_second")]


def histories(folder):
    """{run id: [row, ...]} from histories.csv (finished runs) and every progress.csv below the folder (live runs)."""
    runs = {}
    path = os.path.join(folder, "histories.csv")
    if os.path.exists(path):
        with open(path) as f:
            for row in csv.DictReader(f):
                runs.setdefault(row["run_id"], []).append(row)
    for progress in glob.glob(os.path.join(folder, "**", "progress.csv"), recursive=True):
        run = os.path.basename(os.path.dirname(progress))
        if run in runs:
            continue
        with open(progress) as f:
            runs[run] = list(csv.DictReader(f))
    return runs


def write(folder, out):
    runs = histories(folder)
    for run, rows in sorted(runs.items()):
        target = os.path.join(out, run)
        os.makedirs(target, exist_ok=True)
        for old in glob.glob(os.path.join(target, "events.out.tfevents.*")):
            os.remove(old)
        now = time.time()
        path = os.path.join(target, f"events.out.tfevents.{int(now)}.ste-repro")
        with open(path + ".tmp", "wb") as f:
            f.write(record(event(now, 0, file_version="brain.Event:2")))
            for row in rows:
                step = int(row["epoch"])
                for column, tag in SCALARS:
                    if row.get(column) not in (None, ""):
                        f.write(record(event(now, step, tag, float(row[column]))))
        os.replace(path + ".tmp", path)
    return runs


def read_records(path):
    """The records of an event file, every length and payload checksum verified (AssertionError otherwise)."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i < len(data):
        header = data[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == masked_crc(header), f"{path}: bad length checksum at {i}"
        payload = data[i + 12:i + 12 + n]
        assert struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == masked_crc(payload), f"{path}: bad data checksum at {i}"
        out.append(payload)
        i += 16 + n
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", help="a results folder (with histories.csv, or runs writing progress.csv)")
    p.add_argument("--out", default="tb", help="TensorBoard log folder (default: tb)")
    p.add_argument("--check", action="store_true", help="read the written files back, every checksum verified (make test)")
    a = p.parse_args()
    runs = write(a.folder, a.out)
    if a.check:
        # CRC-32C of "123456789" is 0xE3069283 (the standard check value).
        assert crc32c(b"123456789") == 0xE3069283
        for run, rows in runs.items():
            (path,) = glob.glob(os.path.join(a.out, run, "events.out.tfevents.*"))
            records = read_records(path)
            expected = 1 + sum(1 for r in rows for c, _ in SCALARS if r.get(c) not in (None, ""))
            assert len(records) == expected, f"{path}: {len(records)} records, expected {expected}"
        print(f"tensorboard: {len(runs)} event files read back, every checksum verified")
    print(f"{len(runs)} runs written to {a.out}/ — view them with: tensorboard --logdir {a.out}")


if __name__ == "__main__":
    main()
