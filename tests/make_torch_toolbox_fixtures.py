"""Writes tests/data/torch_toolbox.npz: golden values from PyTorch for the toolbox ops.

torch is not a test dependency; run from the repository root with torch installed:
``python tests/make_torch_toolbox_fixtures.py``. Format and loader: tests/conftest.py
(``torch_cases``). Cases (``op``: the jaxconv function, ``kwargs`` its options):

* ``unfold_<i>`` / ``fold_<i>``: ``F.unfold`` of a random 2-D input, ``F.fold`` of
  random columns;
* ``pad_<i>``: ``F.pad`` in every mode, 1-3 spatial dims, with ``ct`` and the input
  gradient ``dx`` of ``<F.pad(x), ct>`` (the adjoint, folded back by autograd);
* ``conv_<i>``: ``nn.Conv1d/2d/3d(padding_mode=...)``: ``w``, ``b``, the output,
  ``ct`` and the gradients ``dx``, ``dw``, ``db``.
"""

from __future__ import annotations

import pathlib

import torch
import torch.nn.functional as F
from conftest import save_torch_cases  # the one fixture format (tests/ is sys.path[0])

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
    np_ = lambda arrays: {k: v.detach().numpy() for k, v in arrays.items()}
    cases = []
    for i, c in enumerate(UNFOLD):
        kw = dict(kernel_size=c["window"], stride=c["stride"], padding=c["padding"],
                  dilation=c["dilation"])
        jkw = dict(window=c["window"], stride=c["stride"], padding=c["padding"],
                   dilation=c["dilation"])
        x = rnd(2, 3, *c["D"])
        cols = F.unfold(x, **kw)
        cols2 = rnd(*cols.shape)
        cases.append((f"unfold_{i}", "unfold", jkw, np_({"x": x, "y": cols})))
        cases.append((f"fold_{i}", "fold", {"output_size": c["D"], **jkw},
                      np_({"x": cols2, "y": F.fold(cols2, c["D"], **kw)})))
    for i, c in enumerate(PAD):
        x = rnd(2, 2, *c["D"]).requires_grad_()
        y = F.pad(x, _torch_pads(c["pads"]), mode=c["mode"])
        ct = rnd(*y.shape)
        (dx,) = torch.autograd.grad((y * ct).sum(), x)
        cases.append((f"pad_{i}", "pad", {"padding": c["pads"], "mode": c["mode"]},
                      np_({"x": x, "y": y, "ct": ct, "dx": dx})))
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
        kwargs = {k: c[k] for k in ("stride", "padding", "dilation", "groups")}
        cases.append((f"conv_{i}", "conv", {**kwargs, "padding_mode": c["mode"]},
                      np_({"x": x, "w": mod.weight, "b": mod.bias, "y": y, "ct": ct, "dx": dx,
                           "dw": dw, "db": db})))
    n = save_torch_cases(OUT, cases, torch.__version__)
    print(f"wrote {n} cases to {OUT} ({OUT.stat().st_size} bytes), torch {torch.__version__}")


if __name__ == "__main__":
    main()
