"""Generates tests/data/torch_pool.npz: PyTorch's pooling outputs on fixed inputs.

torch is not a test dependency; this script documents how the golden data that
tests/test_pool.py compares against was made. Re-run it (with torch installed)
after changing the cases:

    python tests/make_torch_pool_fixtures.py

Format and loader: tests/conftest.py (``torch_cases``).
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from conftest import save_torch_cases  # the one fixture format (tests/ is sys.path[0])

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "torch_pool.npz")
rng = np.random.default_rng(20240517)


def normal(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def ties(*shape):
    """Small integers: many ties within windows."""
    return rng.integers(-2, 3, size=shape).astype(np.float32)


def with_nans(*shape):
    x = normal(*shape)
    x.reshape(-1)[rng.choice(x.size, size=max(2, x.size // 6), replace=False)] = np.nan
    return x


def neg_inf_rows(*shape):
    x = normal(*shape)
    x[..., :2, :] = -np.inf
    return x


def _fn(kind, nd):
    return getattr(F, f"{kind}{nd}d")


def _torch_max_pool(x, window, stride=None, padding=0, dilation=1, ceil_mode=False):
    y, i = _fn("max_pool", x.ndim - 2)(torch.from_numpy(x), window, stride, padding, dilation,
                                       ceil_mode, return_indices=True)
    return y.numpy(), i.numpy()


CASES = []


def case(name, op, x, kwargs, y, idx=None, indices=None):
    CASES.append((name, op, x, kwargs, y, idx, indices))


def max_pool_case(name, x, **kw):
    y, i = _torch_max_pool(x, **kw)
    case(name, "max_pool", x, kw, y, i)


def avg_pool_case(name, x, window, stride=None, padding=0, ceil_mode=False,
                  count_include_pad=True, divisor=None):
    y = _fn("avg_pool", x.ndim - 2)(torch.from_numpy(x), window, stride, padding, ceil_mode,
                                    count_include_pad,
                                    *([divisor] if x.ndim > 3 else []))
    if x.ndim == 3 and divisor is not None:
        raise ValueError("torch's avg_pool1d has no divisor_override")
    kw = dict(window=window, stride=stride, padding=padding, ceil_mode=ceil_mode,
              count_include_pad=count_include_pad, divisor=divisor)
    case(name, "avg_pool", x, kw, y.numpy())


def lp_pool_case(name, x, p, window, stride=None, ceil_mode=False):
    y = _fn("lp_pool", x.ndim - 2)(torch.from_numpy(x), p, window, stride, ceil_mode)
    case(name, "lp_pool", x, dict(p=p, window=window, stride=stride, ceil_mode=ceil_mode),
         y.numpy())


def unpool_case(name, x, window, stride=None, padding=0, output_size=None):
    nd = x.ndim - 2
    y, i = _torch_max_pool(x, window, stride, padding)
    out = _fn("max_unpool", nd)(torch.from_numpy(y), torch.from_numpy(i), window, stride,
                                padding, output_size=output_size)
    case(name, "max_unpool", y, dict(output_size=list(output_size)), out.numpy(), indices=i)


def adaptive_case(name, kind, x, output_size):
    nd = x.ndim - 2
    if kind == "avg":
        y = _fn("adaptive_avg_pool", nd)(torch.from_numpy(x), output_size)
        case(name, "adaptive_avg_pool", x, dict(output_size=output_size), y.numpy())
    else:
        y, i = _fn("adaptive_max_pool", nd)(torch.from_numpy(x), output_size, return_indices=True)
        case(name, "adaptive_max_pool", x, dict(output_size=output_size), y.numpy(), i.numpy())


def upsample_case(name, x, factor):
    y = F.interpolate(torch.from_numpy(x), scale_factor=factor, mode="nearest")
    case(name, "upsample", x, dict(factor=factor), y.numpy())


# max_pool: ceil_mode edges (the last window must start inside the input or its
# left padding), dilation, 1-3 D, ties, NaNs, all -inf windows next to padding.
max_pool_case("mp1d_ceil_pad", normal(2, 3, 10), window=3, stride=2, padding=1, ceil_mode=True)
max_pool_case("mp2d_ceil_drop_last", normal(1, 2, 5, 5), window=2, stride=2, padding=1,
              ceil_mode=True)
max_pool_case("mp2d_ceil_keep_last", normal(1, 2, 6, 7), window=3, stride=2, ceil_mode=True)
max_pool_case("mp2d_floor_crop", normal(2, 2, 7, 9), window=2)
max_pool_case("mp2d_dilation", normal(2, 2, 9, 8), window=[3, 2], stride=[2, 1], padding=[1, 1],
              dilation=[2, 3])
max_pool_case("mp2d_dilation_ceil", normal(1, 2, 8, 8), window=2, stride=3, padding=1,
              dilation=2, ceil_mode=True)
max_pool_case("mp3d_ceil", normal(1, 2, 5, 6, 7), window=2, stride=[1, 2, 2],
              padding=[0, 1, 1], ceil_mode=True)
max_pool_case("mp2d_ties_overlap", ties(2, 2, 6, 6), window=3, stride=1, padding=1)
max_pool_case("mp2d_ties_nonoverlap", ties(2, 2, 6, 6), window=2)
max_pool_case("mp2d_nan", with_nans(2, 2, 8, 8), window=3, stride=2, padding=1, ceil_mode=True)
max_pool_case("mp2d_nan_nonoverlap", with_nans(2, 2, 8, 8), window=2)
max_pool_case("mp2d_neg_inf_pad", neg_inf_rows(1, 2, 5, 5), window=3, stride=2, padding=1)

# avg_pool: count_include_pad x ceil_mode x divisor_override, 1-3 D.
for cip in (True, False):
    t = "cip" if cip else "nocip"
    avg_pool_case(f"ap1d_ceil_{t}", normal(2, 2, 10), 3, 2, 1, True, cip)
    avg_pool_case(f"ap2d_ceil_{t}", normal(2, 2, 7, 8), 3, 2, 1, True, cip)
    avg_pool_case(f"ap2d_ceil_overhang_{t}", normal(1, 2, 5, 5), 2, 2, 1, True, cip)
    avg_pool_case(f"ap2d_floor_{t}", normal(2, 2, 9, 7), [3, 2], [2, 1], [1, 1], False, cip)
    avg_pool_case(f"ap3d_ceil_{t}", normal(1, 2, 5, 6, 5), [2, 3, 2], [2, 2, 1], [1, 1, 0],
                  True, cip)
avg_pool_case("ap2d_divisor", normal(2, 2, 7, 8), 3, 2, 1, True, True, divisor=5)
avg_pool_case("ap3d_divisor", normal(1, 2, 5, 6, 5), 2, 2, 1, False, False, divisor=3)

# lp_pool: positive inputs (torch takes no absolute value), no ceil-mode partial windows.
lp_pool_case("lp1d_p3", np.abs(normal(2, 3, 10)), 3.0, 2)
lp_pool_case("lp2d_p2", np.abs(normal(2, 3, 8, 9)), 2.0, 3, 2)
lp_pool_case("lp2d_p1.5", np.abs(normal(2, 2, 8, 9)), 1.5, [2, 3], [2, 1])
lp_pool_case("lp2d_p2_signed", normal(2, 2, 6, 6), 2.0, 2)  # even p: signs do not matter
lp_pool_case("lp3d_p2", np.abs(normal(1, 2, 4, 6, 6)), 2.0, 2)

# max_unpool with output_size (including the larger of the sizes a pool maps down).
unpool_case("unpool1d", normal(2, 2, 11), 3, 2, 1, output_size=[11])
unpool_case("unpool2d_odd", normal(2, 3, 7, 9), 2, output_size=[7, 9])
unpool_case("unpool2d_overlap", normal(1, 2, 6, 6), 3, 1, 1, output_size=[6, 6])
unpool_case("unpool3d", normal(1, 2, 5, 4, 6), 2, output_size=[5, 4, 6])

# adaptive pools: non-divisible sizes (overlapping windows), output > input, global.
for kind in ("avg", "max"):
    adaptive_case(f"a{kind}1d", kind, normal(2, 3, 10), 4)
    adaptive_case(f"a{kind}2d", kind, normal(2, 2, 7, 9), [3, 4])
    adaptive_case(f"a{kind}2d_up", kind, normal(1, 2, 5, 3), [3, 7])
    adaptive_case(f"a{kind}2d_global", kind, normal(2, 3, 5, 6), 1)
    adaptive_case(f"a{kind}3d", kind, normal(1, 2, 5, 7, 6), [2, 3, 4])
adaptive_case("amax2d_ties", "max", ties(2, 2, 7, 9), [3, 4])
adaptive_case("amax2d_nan", "max", with_nans(2, 2, 7, 9), [3, 4])

upsample_case("up1d", normal(1, 2, 5), 3)
upsample_case("up2d", normal(2, 2, 3, 4), [2, 3])
upsample_case("up3d", normal(1, 2, 2, 3, 2), [2, 1, 3])

# Added later (appended so the cases above keep their random inputs):
# lp_pool with ceil_mode -- torch rescales a clipped last window by window / covered.
lp_pool_case("lp1d_p2_ceil", np.abs(normal(2, 2, 9)), 2.0, 3, 2, ceil_mode=True)
lp_pool_case("lp2d_p3_ceil", np.abs(normal(1, 2, 7, 8)), 3.0, [3, 2], [2, 3], ceil_mode=True)
# adaptive_avg_pool with NaN / inf: a non-finite value stays in the windows holding it.
adaptive_case("aavg1d_nan", "avg", with_nans(2, 2, 11), 4)
_inf = normal(2, 2, 7, 9)
_inf[0, 0, 2, 3], _inf[1, 1, 5, 0] = np.inf, -np.inf
adaptive_case("aavg2d_inf", "avg", _inf, [3, 4])


def main():
    cases = []
    for name, op, x, kw, y, idx, indices in CASES:
        arrays = {"x": x, "y": y.astype(np.float32)}
        if idx is not None:
            arrays["idx"] = idx.astype(np.int32)
        if indices is not None:
            arrays["indices"] = indices.astype(np.int32)
        cases.append((name, op, kw, arrays))
    n = save_torch_cases(OUT, cases, torch.__version__)
    print(f"wrote {n} cases to {OUT} ({os.path.getsize(OUT)} bytes), torch {torch.__version__}")


if __name__ == "__main__":
    main()
