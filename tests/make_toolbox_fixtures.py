"""Writes tests/data/torch_toolbox.npz: golden values from PyTorch for the toolbox ops.

Run from the repository root with torch installed (it is not a test dependency):
``python tests/make_toolbox_fixtures.py``. Cases (their arguments are stored as
JSON next to the arrays, so the tests read them from the file):

* ``unfold/<i>``: ``F.unfold`` of a random 2-D input, and ``F.fold`` of random columns;
* ``pad/<i>``: ``F.pad`` in every mode, 1-3 spatial dims, with the input gradient of
  ``<F.pad(x), ct>`` (the adjoint, folded back by autograd);
* ``conv/<i>``: ``nn.Conv1d/2d/3d(padding_mode=...)``: output and gradients in x, w, b.
"""

import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).parent / "data" / "torch_toolbox.npz"

UNFOLD = [
    dict(D=(5, 6), window=(2, 3), stride=1, padding=0, dilation=1),
    dict(D=(7, 6), window=3, stride=2, padding=1, dilation=1),
    dict(D=(8, 7), window=(3, 2), stride=(1, 2), padding=(2, 1), dilation=(2, 1)),
]
PAD = [
    dict(D=(5,), pads=[(2, 3)], mode="reflect"),
    dict(D=(4,), pads=[(3, 4)], mode="replicate"),
    dict(D=(4,), pads=[(4, 2)], mode="circular"),
    dict(D=(4, 5), pads=[(1, 3), (4, 2)], mode="reflect"),
    dict(D=(3, 4), pads=[(2, 0), (1, 3)], mode="replicate"),
    dict(D=(4, 3), pads=[(1, 4), (3, 2)], mode="circular"),
    dict(D=(3, 4, 3), pads=[(1, 2), (3, 1), (0, 2)], mode="reflect"),
    dict(D=(2, 3, 2), pads=[(1, 2), (0, 3), (2, 1)], mode="replicate"),
    dict(D=(3, 2, 4), pads=[(3, 1), (2, 2), (1, 0)], mode="circular"),
]
CONV = [
    dict(D=(6, 7), k=(3, 3), cin=2, cout=3, stride=1, padding=1, dilation=1, groups=1,
         mode="reflect"),
    dict(D=(6, 5), k=(3, 2), cin=2, cout=2, stride=(2, 1), padding=(2, 1), dilation=(1, 2),
         groups=2, mode="replicate"),
    dict(D=(5, 6), k=(3, 3), cin=1, cout=2, stride=1, padding=(1, 2), dilation=1, groups=1,
         mode="circular"),
    dict(D=(7, 6), k=(4, 3), cin=2, cout=2, stride=1, padding="same", dilation=1, groups=1,
         mode="reflect"),
    dict(D=(9,), k=(3,), cin=2, cout=3, stride=2, padding=2, dilation=2, groups=1,
         mode="circular"),
    dict(D=(4, 5, 4), k=(3, 3, 2), cin=2, cout=2, stride=1, padding=1, dilation=1, groups=1,
         mode="replicate"),
]


def _torch_pads(pads):
    """jaxconv's per-dim (lo, hi), first dim first -> F.pad's reversed flat tuple."""
    return tuple(v for lo, hi in reversed(pads) for v in (lo, hi))


def main():
    gen = torch.Generator().manual_seed(0)
    rnd = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)
    arrays, meta = {}, {"unfold": UNFOLD, "pad": PAD, "conv": CONV}
    for i, c in enumerate(UNFOLD):
        kw = dict(kernel_size=c["window"], stride=c["stride"], padding=c["padding"],
                  dilation=c["dilation"])
        x = rnd(2, 3, *c["D"])
        cols = F.unfold(x, **kw)
        cols2 = rnd(*cols.shape)
        arrays |= {f"unfold/{i}/x": x, f"unfold/{i}/cols": cols, f"unfold/{i}/cols_in": cols2,
                   f"unfold/{i}/fold": F.fold(cols2, c["D"], **kw)}
    for i, c in enumerate(PAD):
        x = rnd(2, 2, *c["D"]).requires_grad_()
        y = F.pad(x, _torch_pads(c["pads"]), mode=c["mode"])
        ct = rnd(*y.shape)
        (dx,) = torch.autograd.grad((y * ct).sum(), x)
        arrays |= {f"pad/{i}/x": x, f"pad/{i}/y": y, f"pad/{i}/ct": ct, f"pad/{i}/dx": dx}
    for i, c in enumerate(CONV):
        nd = len(c["D"])
        mod = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[nd](
            c["cin"], c["cout"], c["k"], stride=c["stride"], padding=c["padding"],
            dilation=c["dilation"], groups=c["groups"], padding_mode=c["mode"],
            dtype=torch.float64)
        with torch.no_grad():
            mod.weight.copy_(rnd(*mod.weight.shape))
            mod.bias.copy_(rnd(*mod.bias.shape))
        x = rnd(2, c["cin"], *c["D"]).requires_grad_()
        y = mod(x)
        ct = rnd(*y.shape)
        dx, dw, db = torch.autograd.grad((y * ct).sum(), (x, mod.weight, mod.bias))
        arrays |= {f"conv/{i}/x": x, f"conv/{i}/w": mod.weight, f"conv/{i}/b": mod.bias,
                   f"conv/{i}/y": y, f"conv/{i}/ct": ct, f"conv/{i}/dx": dx,
                   f"conv/{i}/dw": dw, f"conv/{i}/db": db}
    out = {k: v.detach().numpy() for k, v in arrays.items()}
    out["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({len(out)} arrays, torch {torch.__version__})")


if __name__ == "__main__":
    main()
