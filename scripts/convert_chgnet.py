#!/usr/bin/env python3
"""Convert CHGNet's pretrained 0.3.0 weights from the chgnet==0.4.2 wheel to safetensors:
assets/potentials/chgnet-0.3.0.safetensors (tensor names = PyTorch state_dict keys; the header metadata
carries the model arguments, the source and the licence notice). Geode's `energy::chgnet` reads this file.

Run once with an interpreter that has torch, chgnet==0.4.2 and safetensors:
    /tmp/ref/bin/python scripts/convert_chgnet.py
"""
import hashlib
import json
from pathlib import Path

import chgnet
import torch
from safetensors.torch import save_file

SRC = Path(chgnet.__file__).parent / "pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar"
OUT = Path(__file__).resolve().parent.parent / "assets/potentials/chgnet-0.3.0.safetensors"

LICENCE = (
    "CHGNet 0.3.0 pretrained weights (B. Deng et al., Nat. Mach. Intell. 5, 1031 (2023)), trained on MPtrj, "
    "from the chgnet==0.4.2 wheel, chgnet/pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar. "
    "BSD-3-Clause-LBNL: Copyright (c) 2023, The Regents of the University of California, through Lawrence "
    "Berkeley National Laboratory. Redistribution with this notice; see assets/licences/chgnet-LICENSE.txt."
)

assert chgnet.__version__ == "0.4.2", chgnet.__version__
ck = torch.load(SRC, map_location="cpu", weights_only=False)
state = {k: v.contiguous().clone() for k, v in ck["model"]["state_dict"].items()}
n_params = sum(v.numel() for v in state.values())
meta = {
    "format": "geode-chgnet-1",
    "model_args": json.dumps(ck["model"]["model_args"], sort_keys=True),
    "source": f"chgnet=={chgnet.__version__} chgnet/pretrained/0.3.0/{SRC.name}",
    "source_sha256": hashlib.sha256(SRC.read_bytes()).hexdigest(),
    "n_params": str(n_params),
    "licence": LICENCE,
}
OUT.parent.mkdir(parents=True, exist_ok=True)
save_file(state, str(OUT), metadata=meta)
print(f"wrote {OUT} ({n_params:,} parameters, {OUT.stat().st_size:,} bytes)")
