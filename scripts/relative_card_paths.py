#!/usr/bin/env python3
"""Rewrite the model cards of shipped .safetensors models so they name files as the repository does.

A model trained here records the absolute paths of its data files and the binary that ran the command
(e.g. /work/main/assets/matbench/... and /tmp/bench/geode-b4); shipped cards should read
assets/matbench/... and `geode`. Only the JSON header's metadata changes: tensor offsets are relative to
the end of the header, so the tensors are copied byte for byte.

    scripts/relative_card_paths.py REPO_ROOT BINARY OUT_DIR MODEL.safetensors...
e.g. scripts/relative_card_paths.py /work/main /tmp/bench/geode-b4 /tmp/bench/ship assets/models/expt-gap.safetensors
"""
import json
import struct
import sys


def rewrite(path, root, binary, out_dir):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.get("__metadata__", {})
    for key, value in meta.items():
        value = value.replace(root.rstrip("/") + "/", "")
        value = value.replace(binary, "geode")
        value = value.replace(out_dir.rstrip("/") + "/", "assets/models/")
        meta[key] = value
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data[8 + n :])


if __name__ == "__main__":
    root, binary, out_dir, *models = sys.argv[1:]
    for m in models:
        rewrite(m, root, binary, out_dir)
        print("rewrote", m)
