"""Regenerates tests/data/torch_conv.npz: PyTorch's conv / conv_transpose outputs.

PyTorch is not a dependency of jaxconv or of its tests; this script records
what ``torch.nn.functional`` returns for a set of named cases so that
``tests/test_conv.py::test_matches_torch`` can check jaxconv against it
(format: tests/conftest.py).
Run it with torch installed (it was made with torch 2.13.0, CPU, float64)::

    python tests/make_torch_conv_fixtures.py
"""

import pathlib

import numpy as np
import torch
import torch.nn.functional as F
from conftest import save_torch_cases  # the one fixture format (tests/ is sys.path[0])

# name: (op, nd, x_shape, w_shape, kwargs). kwargs use torch's names.
CASES = {
    "conv1d_basic": ("conv", 1, (2, 3, 11), (4, 3, 3), dict(stride=1, padding=0)),
    "conv1d_stride_pad_dil": ("conv", 1, (1, 2, 13), (3, 2, 4), dict(stride=3, padding=2, dilation=2)),
    "conv1d_same_even": ("conv", 1, (2, 2, 10), (2, 2, 4), dict(padding="same")),
    "conv1d_same_dil": ("conv", 1, (2, 2, 10), (2, 2, 3), dict(padding="same", dilation=3)),
    "conv2d_groups": ("conv", 2, (2, 4, 9, 8), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), groups=2)),
    "conv2d_depthwise": ("conv", 2, (1, 3, 7, 7), (6, 1, 3, 3), dict(padding=1, groups=3)),
    "conv2d_same_even": ("conv", 2, (1, 2, 8, 7), (3, 2, 4, 2), dict(padding="same", dilation=(1, 2))),
    "conv3d_basic": ("conv", 3, (1, 2, 6, 5, 7), (3, 2, 3, 2, 3), dict(stride=(1, 2, 2), padding=(1, 0, 1), dilation=(1, 1, 2))),
    "tconv1d_basic": ("conv_transpose", 1, (2, 3, 6), (3, 4, 3), dict(stride=2, padding=1, output_padding=1)),
    "tconv1d_dilated_op": ("conv_transpose", 1, (1, 2, 5), (2, 2, 3), dict(stride=1, dilation=3, output_padding=2)),
    "tconv2d_groups": ("conv_transpose", 2, (2, 4, 5, 4), (4, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2)),
    "tconv2d_dil": ("conv_transpose", 2, (1, 2, 4, 4), (2, 2, 3, 3), dict(stride=2, padding=2, dilation=2)),
    "tconv3d_basic": ("conv_transpose", 3, (1, 2, 3, 4, 3), (2, 2, 2, 3, 2), dict(stride=2, padding=(0, 1, 0), output_padding=(1, 0, 1))),
}


def main():
    rng = np.random.default_rng(0)
    cases = []
    for name, (op, nd, xs, ws, kw) in CASES.items():
        x = rng.standard_normal(xs)
        w = rng.standard_normal(ws)
        c_out = ws[0] if op == "conv" else ws[1] * kw.get("groups", 1)
        b = rng.standard_normal(c_out)
        fn = getattr(F, f"{op}{nd}d")
        y = fn(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **kw).numpy()
        cases.append((name, op, kw, {"x": x, "w": w, "b": b, "y": y}))
    path = pathlib.Path(__file__).parent / "data" / "torch_conv.npz"
    n = save_torch_cases(path, cases, torch.__version__)
    print(f"wrote {path} ({n} cases, torch {torch.__version__})")


if __name__ == "__main__":
    main()
