"""jaxconv benchmarks: one command, one table (jaxconv vs jax.lax + XLA autodiff vs PyTorch).

    python benchmarks/run.py                 # every section
    python benchmarks/run.py --quick         # fewer rounds, smaller matmul
    python benchmarks/run.py --ops --lenet   # only some sections
    python benchmarks/run.py --cases lenet   # only rows whose name contains "lenet"
    python benchmarks/run.py --json out.json # also save every sample

Sections (all run when none is named):

``--ops``        forward + backward (gradients of x and w) of single ops: jaxconv
                 (``method="auto"``; the column shows the algorithm the plan chose for
                 the op's forward / d input / d weight) vs ``jax.lax`` + XLA autodiff vs
                 torch CPU (when importable: ``pip install -e .[bench]``).
``--lenet``      the tutorial LeNet's SGD-momentum train step, images/s.
``--roofline``   XLA's f32 matmul GFLOP/s (and torch's) in the same run.
``--options``    jaxconv's ops and LeNet step compiled plain and with
                 ``jaxconv.compiler_options()`` (nothing to compare where it is empty).
``--devices``    the data-parallel LeNet step on 1 and 2 host devices (subprocesses with
                 ``XLA_FLAGS=--xla_force_host_platform_device_count=N``).
``--signal``     ``jaxconv.signal`` convolve / fftconvolve vs ``scipy.signal``.
``--separable``  ``jaxconv.separable_conv`` vs the equivalent full depthwise conv.

Every row checks that its contenders agree with the reference before it is timed;
the method (interleaved rounds, min and median, ratios of median times, < 1 =
jaxconv faster) is described in ``benchmarks/harness.py``. Progress goes to
stderr; stdout is Markdown that can be pasted into the README.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Benchmark the jaxconv of this checkout, whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax
import jax.numpy as jnp
import numpy as np
import optax
from harness import (
    AgreementError,
    Timing,
    check_agreement,
    check_all,
    fmt_ms,
    fmt_ratio,
    machine_lines,
    markdown_table,
    measure,
    ratio,
)
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jaxconv
from jaxconv.models import lenet

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is the optional `bench` extra
    torch = None  # type: ignore[assignment]
    F = None  # type: ignore[assignment]

SECTIONS = ("ops", "lenet", "roofline", "options", "devices", "signal", "separable")


@dataclasses.dataclass(frozen=True)
class Settings:
    rounds: int
    min_block_s: float
    tol: float
    matmul_n: int
    cases: tuple[str, ...]
    quick: bool

    def wanted(self, name: str) -> bool:
        return not self.cases or any(c in name.lower() for c in self.cases)

    def measure(self, contenders: dict[str, Callable[[], Any]]) -> dict[str, Timing]:
        return measure(contenders, rounds=self.rounds, min_block_s=self.min_block_s)


class Report:
    """Collects the Markdown (stdout), the JSON records and the agreement failures."""

    def __init__(self) -> None:
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.failures: list[str] = []

    def section(self, title: str, notes: Sequence[str] = ()) -> None:
        print(f"\n### {title}\n")
        for n in notes:
            print(n)
        if notes:
            print()
        sys.stdout.flush()

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> None:
        print(markdown_table(headers, rows, left) if rows else "(no rows)")
        sys.stdout.flush()

    def record(self, section: str, name: str, timings: dict[str, Timing], **extra: Any) -> None:
        self.records.setdefault(section, []).append(
            {"name": name, **extra, "timings": {k: t.as_dict() for k, t in timings.items()}}
        )

    def fail(self, what: str, err: Exception) -> None:
        msg = str(err) if str(err).startswith(what) else f"{what}: {err}"
        self.failures.append(msg)
        progress(f"AGREEMENT FAILED {msg}")


def progress(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _rng_arrays(seed: int, *shapes_scales: tuple[tuple[int, ...], float]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * sc).astype(np.float32) for s, sc in shapes_scales]


def _torch_device() -> str:
    if torch is not None and jax.default_backend() == "gpu" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def _tt(a: Any, grad: bool = False) -> Any:
    return torch.tensor(np.asarray(a), device=_torch_device(), requires_grad=grad)


# ---------------------------------------------------------------------------
# Single ops, forward + backward
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OpCase:
    name: str
    kind: str  # "conv" | "conv_transpose" | "max_pool" | "avg_pool"
    x: tuple[int, ...]
    w: tuple[int, ...] | None = None
    stride: int = 1
    padding: int = 0
    groups: int = 1
    window: int = 0


def op_cases() -> list[OpCase]:
    cases = [
        OpCase("conv 3x3 64->64 56x56 N=8 pad 1", "conv", (8, 64, 56, 56), (64, 64, 3, 3),
               padding=1),
        OpCase("conv 7x7 s2 3->64 224x224 N=4 pad 3", "conv", (4, 3, 224, 224), (64, 3, 7, 7),
               stride=2, padding=3),
        OpCase("conv1d k=9 64->64 L=4096 N=8", "conv", (8, 64, 4096), (64, 64, 9)),
        OpCase("depthwise 3x3 C=128 56x56 N=8", "conv", (8, 128, 56, 56), (128, 1, 3, 3),
               groups=128),
        OpCase("grouped 3x3 256->256 14x14 N=8 G=32 pad 1", "conv", (8, 256, 14, 14),
               (256, 8, 3, 3), padding=1, groups=32),
        OpCase("conv_transpose 4x4 s2 128->64 32x32 N=8 pad 1", "conv_transpose",
               (8, 128, 32, 32), (128, 64, 4, 4), stride=2, padding=1),
        OpCase("max_pool 3 s2 pad 1 (8,64,112,112)", "max_pool", (8, 64, 112, 112),
               window=3, stride=2, padding=1),
    ]
    for b in (128, 500):
        cases += [
            OpCase(f"LeNet conv1 ({b},1,28,28)*(20,1,5,5)", "conv", (b, 1, 28, 28), (20, 1, 5, 5)),
            OpCase(f"LeNet conv2 ({b},20,12,12)*(50,20,5,5)", "conv", (b, 20, 12, 12),
                   (50, 20, 5, 5)),
        ]
    for pool in ("max_pool", "avg_pool"):
        for b in (128, 500):
            for shape in ((b, 20, 24, 24), (b, 50, 8, 8)):
                cases.append(OpCase(f"LeNet {pool} 2 {shape}", pool, shape, window=2, stride=2))
    return cases


def _op_fns(c: OpCase) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any] | None]:
    """(jaxconv, lax, torch) versions of the case's op."""
    nd = len(c.x) - 2
    s, p = (c.stride,) * nd, [(c.padding, c.padding)] * nd
    tf = None
    if c.kind == "conv":
        def jf(x, w):
            return jaxconv.conv(x, w, stride=c.stride, padding=c.padding, groups=c.groups)

        def lf(x, w):
            return lax.conv_general_dilated(x, w, s, p, feature_group_count=c.groups)

        if F is not None:
            conv_nd = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]

            def tf(x, w):
                return conv_nd(x, w, stride=c.stride, padding=c.padding, groups=c.groups)
    elif c.kind == "conv_transpose":
        assert c.w is not None
        kp = [(k - 1 - c.padding,) * 2 for k in c.w[2:]]
        spec = ("NCH", "OIH", "NCH") if nd == 1 else ("NCHW", "OIHW", "NCHW")

        def jf(x, w):
            return jaxconv.conv_transpose(x, w, stride=c.stride, padding=c.padding)

        def lf(x, w):  # lax's own transposed conv: lhs dilation, flipped kernel
            return lax.conv_transpose(x, w, s, kp, dimension_numbers=spec, transpose_kernel=True)

        if F is not None:
            def tf(x, w):
                return F.conv_transpose2d(x, w, stride=c.stride, padding=c.padding)
    elif c.kind == "max_pool":
        def jf(x):
            return jaxconv.max_pool(x, c.window, stride=c.stride, padding=c.padding)

        def lf(x):
            return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1) + (c.window,) * nd,
                                     (1, 1) + s, [(0, 0), (0, 0), *p])

        if F is not None:
            def tf(x):
                return F.max_pool2d(x, c.window, c.stride, c.padding)
    elif c.kind == "avg_pool":
        def jf(x):
            return jaxconv.avg_pool(x, c.window, stride=c.stride, padding=c.padding)

        def lf(x):
            y = lax.reduce_window(x, 0.0, lax.add, (1, 1) + (c.window,) * nd,
                                  (1, 1) + s, [(0, 0), (0, 0), *p])
            return y / c.window**nd

        if F is not None:
            def tf(x):
                return F.avg_pool2d(x, c.window, c.stride, c.padding)
    else:
        raise ValueError(c.kind)
    return jf, lf, tf


def auto_plan(c: OpCase) -> str:
    """The algorithms ``method="auto"`` runs for the op's forward / d input / d weight.

    For ``conv_transpose`` the op's forward is the geometry's ``input_grad``
    map and its input gradient the geometry's ``forward`` map. ``-`` where
    ``jaxconv.conv_plan`` does not exist.
    """
    if c.w is None:
        return "n/a"
    import jaxconv

    if not hasattr(jaxconv, "conv_plan"):
        return "-"
    try:
        plan = jaxconv.conv_plan(c.x, c.w, stride=c.stride, padding=c.padding, groups=c.groups,
                                 transpose=c.kind == "conv_transpose", dtype=jnp.float32)
    except Exception as e:  # the table must not stop on a plan error
        return f"error ({type(e).__name__})"
    maps = (plan.forward, plan.input_grad, plan.weight_grad)
    if c.kind == "conv_transpose":
        maps = (plan.input_grad, plan.forward, plan.weight_grad)
    return " / ".join(str(m) for m in maps)


def _vjp_step(f: Callable[..., Any], options: dict[str, Any] | None = None
              ) -> Callable[..., Any]:
    """jit of (ct, *args) -> (f(*args), *grads of <f(*args), ct> for every arg), compiled
    with the XLA ``options`` if given."""
    def step(ct, *args):
        y, pullback = jax.vjp(f, *args)
        return (y, *pullback(ct))

    return jax.jit(step, compiler_options=options)


def _op_inputs(i: int, c: OpCase, lf: Callable[..., Any]
               ) -> tuple[list[np.ndarray], np.ndarray]:
    """The case's random inputs (x, and w scaled by 1/sqrt(fan-in)) and cotangent, seeded by
    the case's index."""
    inputs = [(c.x, 1.0)] + ([(c.w, 1.0 / np.sqrt(np.prod(c.w[1:])))] if c.w else [])
    args_np = _rng_arrays(i, *inputs)
    y_shape = jax.eval_shape(lf, *args_np).shape
    (ct_np,) = _rng_arrays(1000 + i, (y_shape, 1.0))
    return args_np, ct_np


def _torch_vjp(f: Callable[..., Any], ct: np.ndarray, *args: np.ndarray) -> Callable[[], Any]:
    ts = [_tt(a, grad=True) for a in args]
    ctt = _tt(ct)

    def run():
        y = f(*ts)
        return (y.detach(), *torch.autograd.grad(y, ts, ctt))

    return run


def run_ops(st: Settings, rep: Report) -> None:
    cases = [c for c in op_cases() if st.wanted(c.name)]
    if not cases:
        return
    rep.section(
        "Forward + backward of single ops (float32)",
        ["Time of one call computing the output and the gradients with respect to every "
         "input (x and w), from a fixed random cotangent; ms as median (min) over the rounds; "
         "ratios of median times, < 1 = jaxconv faster. `auto` column: the algorithm jaxconv's "
         "plan runs for the op's forward / d input / d weight (`-`: no plan module)."])
    rows = []
    for i, c in enumerate(cases):
        progress(f"ops: {c.name}")
        jf, lf, tf = _op_fns(c)
        args_np, ct_np = _op_inputs(i, c, lf)
        args, ct = [jnp.asarray(a) for a in args_np], jnp.asarray(ct_np)
        steps = {"jaxconv": _vjp_step(jf), "lax": _vjp_step(lf)}
        contenders: dict[str, Callable[[], Any]] = {
            name: (lambda s=s: s(ct, *args)) for name, s in steps.items()
        }
        if tf is not None:
            contenders["torch"] = _torch_vjp(tf, ct_np, *args_np)
        plan = auto_plan(c)
        try:
            others = {k: fn for k, fn in contenders.items() if k != "lax"}
            agree = check_all(c.name, others, steps["lax"](ct, *args), st.tol, "lax")
        except AgreementError as e:
            rep.fail(c.name, e)
            rows.append([c.name, plan, "DISAGREE", "-", "-", "-", "-"])
            continue
        t = st.measure(contenders)
        tj, tl, tt = t["jaxconv"], t["lax"], t.get("torch")
        rows.append([c.name, plan, fmt_ms(tj), fmt_ms(tl), fmt_ms(tt),
                     fmt_ratio(ratio(tj, tt)), fmt_ratio(ratio(tj, tl))])
        rep.record("ops", c.name, t, auto=plan, agreement_vs_lax=agree)
    rep.table(["case", "auto: fwd / dx / dw", "jaxconv ms", "lax ms", "torch ms",
               "jaxconv/torch", "jaxconv/lax"], rows, left=2)


# ---------------------------------------------------------------------------
# LeNet train step
# ---------------------------------------------------------------------------

VARIANT = "tutorial"
LR, MOMENTUM = 0.01, 0.9


def jaxconv_lenet(p: Any, x: jax.Array) -> jax.Array:
    return lenet.apply(p, x, VARIANT)


def lax_lenet(p: Any, x: jax.Array) -> jax.Array:
    """The tutorial LeNet written with lax.conv_general_dilated / lax.reduce_window."""
    def conv(x, layer):
        y = lax.conv_general_dilated(x, layer["w"], (1, 1), "VALID")
        return y + layer["b"][None, :, None, None]

    def pool(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    x = jnp.tanh(pool(conv(x, p["conv1"])))
    x = jnp.tanh(pool(conv(x, p["conv2"])))
    x = jnp.tanh(x.reshape(x.shape[0], -1) @ p["fc1"]["w"].T + p["fc1"]["b"])
    return x @ p["fc2"]["w"].T + p["fc2"]["b"]


def _loss(apply: Callable[..., Any]) -> Callable[..., Any]:
    def loss(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(apply(p, x), y).mean()

    return loss


def train_step(apply: Callable[..., Any], opt: optax.GradientTransformation):
    """(params, opt_state, x, y) -> (params, opt_state, loss), not yet jitted."""
    loss_fn = _loss(apply)

    def step(p, s, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    return step


def lenet_data(batch: int) -> tuple[Any, jax.Array, jax.Array]:
    params = lenet.init(jax.random.PRNGKey(0), VARIANT)
    x = jax.random.uniform(jax.random.PRNGKey(1), (batch, 1, 28, 28), jnp.float32)
    y = jax.random.randint(jax.random.PRNGKey(2), (batch,), 0, 10)
    return params, x, y


def _stateful(step: Callable[..., Any], p: Any, s: Any, x: Any, y: Any) -> Callable[[], Any]:
    """A zero-argument call doing one training step, carrying params and state along."""
    state = [p, s]

    def run():
        state[0], state[1], loss = step(state[0], state[1], x, y)
        return loss

    return run


class TorchLeNet:
    """The same network in torch (parameters copied from jaxconv's), SGD with momentum."""

    def __init__(self, params: Any, x: Any, y: Any) -> None:
        nn = torch.nn
        self.model = nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Tanh(),
            nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Tanh(),
            nn.Flatten(), nn.Linear(800, 500), nn.Tanh(), nn.Linear(500, 10),
        ).to(_torch_device())
        self.layers = {"conv1": self.model[0], "conv2": self.model[3],
                       "fc1": self.model[7], "fc2": self.model[9]}
        with torch.no_grad():
            for name, m in self.layers.items():
                m.weight.copy_(_tt(params[name]["w"]))
                m.bias.copy_(_tt(params[name]["b"]))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.loss = nn.CrossEntropyLoss()
        self.x, self.y = _tt(x), torch.tensor(np.asarray(y), dtype=torch.long,
                                             device=_torch_device())

    def loss_and_grads(self) -> tuple[Any, dict[str, dict[str, Any]]]:
        self.model.zero_grad(set_to_none=True)
        loss = self.loss(self.model(self.x), self.y)
        loss.backward()
        grads = {n: {"b": m.bias.grad, "w": m.weight.grad} for n, m in self.layers.items()}
        return loss.detach(), grads

    def step(self) -> Any:
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        return loss.detach()


def run_lenet(st: Settings, rep: Report) -> None:
    batches = [b for b in (128, 500) if st.wanted(f"lenet train step b={b}")]
    if not batches:
        return
    rep.section(
        f"LeNet ({VARIANT!r} variant) SGD-momentum train step (float32)",
        ["One jitted step (forward, backward, optax SGD momentum update) on a fixed batch; "
         "the lax network is the same one written with `lax.conv_general_dilated` / "
         "`lax.reduce_window` + autodiff; torch is the same nn.Module with the same "
         "parameters and `torch.optim.SGD`. images/s from the median step time; "
         "ms as median (min); ratios of median times (< 1 = jaxconv faster; jaxconv/torch "
         "<= 0.5 means at least 2x torch's images/s)."])
    opt = optax.sgd(LR, momentum=MOMENTUM)
    rows = []
    for b in batches:
        name = f"LeNet train step B={b}"
        progress(name)
        params, x, y = lenet_data(b)
        applies = {"jaxconv": jaxconv_lenet, "lax": lax_lenet}
        agree = {}
        try:
            grads = {n: jax.jit(jax.value_and_grad(_loss(a)))(params, x, y)
                     for n, a in applies.items()}
            agree["jaxconv"] = check_agreement(f"{name}: jaxconv vs lax loss and gradients",
                                               grads["jaxconv"], grads["lax"], st.tol)
            tl = TorchLeNet(params, x, y) if torch is not None else None
            if tl is not None:
                agree["torch"] = check_agreement(f"{name}: torch vs lax loss and gradients",
                                                 tl.loss_and_grads(), grads["lax"], st.tol)
        except AgreementError as e:
            rep.fail(name, e)
            rows.append([str(b), "DISAGREE"] + ["-"] * 7)
            continue
        contenders = {n: _stateful(jax.jit(train_step(a, opt)), params, opt.init(params), x, y)
                      for n, a in applies.items()}
        if tl is not None:
            contenders["torch"] = tl.step
        t = st.measure(contenders)
        tj, tx, tt = t["jaxconv"], t["lax"], t.get("torch")

        def ips(tm: Timing | None, b: int = b) -> str:
            return "-" if tm is None else f"{b / tm.median:,.0f}"

        rows.append([str(b), ips(tj), ips(tx), ips(tt), fmt_ms(tj), fmt_ms(tx), fmt_ms(tt),
                     fmt_ratio(ratio(tj, tt)), fmt_ratio(ratio(tj, tx))])
        rep.record("lenet", name, t, batch=b, agreement_vs_lax=agree)
    rep.table(["batch", "jaxconv img/s", "lax img/s", "torch img/s", "jaxconv ms", "lax ms",
               "torch ms", "jaxconv/torch", "jaxconv/lax"], rows)


# ---------------------------------------------------------------------------
# Roofline: f32 matmul
# ---------------------------------------------------------------------------


def run_roofline(st: Settings, rep: Report) -> None:
    n = st.matmul_n
    name = f"matmul {n}x{n} @ {n}x{n} f32"
    if not st.wanted(name):
        return
    rep.section("Roofline: float32 matrix multiplication in the same run",
                ["GFLOP/s = 2 n^3 / time, from the median (best) time; XLA at JAX's default "
                 "precision."])
    progress(name)
    a_np, b_np = _rng_arrays(7, ((n, n), 1.0), ((n, n), 1.0))
    a, b = jnp.asarray(a_np), jnp.asarray(b_np)
    mm = jax.jit(jnp.matmul)
    contenders: dict[str, Callable[[], Any]] = {"XLA": lambda: mm(a, b)}
    if torch is not None:
        at, bt = _tt(a_np), _tt(b_np)
        contenders["torch"] = lambda: torch.mm(at, bt)
    want = a_np.astype(np.float64) @ b_np.astype(np.float64)
    try:
        agree = check_all(name, contenders, want, st.tol, "float64 numpy")
    except AgreementError as e:
        rep.fail(name, e)
        return
    t = st.measure(contenders)

    def gf(tm: Timing | None) -> str:
        if tm is None:
            return "-"
        return f"{2 * n**3 / tm.median / 1e9:.0f} ({2 * n**3 / tm.min / 1e9:.0f})"

    rep.table(["case", "XLA GFLOP/s", "torch GFLOP/s", "XLA ms", "torch ms", "XLA/torch"],
              [[name, gf(t["XLA"]), gf(t.get("torch")), fmt_ms(t["XLA"]), fmt_ms(t.get("torch")),
                fmt_ratio(ratio(t["XLA"], t.get("torch")))]])
    rep.record("roofline", name, t, n=n, agreement_vs_float64=agree)


# ---------------------------------------------------------------------------
# jaxconv.compiler_options(): the same programs with and without
# ---------------------------------------------------------------------------


def run_options(st: Settings, rep: Report) -> None:
    """jaxconv's fwd+bwd of every op case and its LeNet step, compiled plain and with
    ``jaxconv.compiler_options()``, interleaved in this one process."""
    cases = [c for c in op_cases() if st.wanted(c.name)]
    batches = [b for b in (128, 500) if st.wanted(f"lenet train step b={b}")]
    if not cases and not batches:
        return
    opts = jaxconv.compiler_options()
    rep.section(
        "jaxconv.compiler_options(): the same programs compiled with and without",
        ["jaxconv's fwd+bwd of each op case above and its LeNet train step, `jax.jit` plain "
         "and `jax.jit(..., compiler_options=jaxconv.compiler_options())` (what "
         "`jaxconv.train.Trainer` uses), interleaved; ms as median (min); `with / plain` "
         f"< 1 = the options faster. Options on this host: `{opts}`."])
    if not opts:
        print("(no options on this backend and host: nothing to compare)")
        return
    opt = optax.sgd(LR, momentum=MOMENTUM)
    rows = []
    for i, c in enumerate(op_cases()):
        if c not in cases:
            continue
        progress(f"options: {c.name}")
        jf, lf, _ = _op_fns(c)
        args_np, ct_np = _op_inputs(i, c, lf)
        args, ct = [jnp.asarray(a) for a in args_np], jnp.asarray(ct_np)
        steps = {"plain": _vjp_step(jf), "options": _vjp_step(jf, opts)}
        contenders = {name: (lambda s=s: s(ct, *args)) for name, s in steps.items()}
        try:
            check_all(c.name, {"options": contenders["options"]}, steps["plain"](ct, *args),
                      st.tol, "plain")
        except AgreementError as e:
            rep.fail(c.name, e)
            rows.append([c.name, "DISAGREE", "-", "-"])
            continue
        t = st.measure(contenders)
        rows.append([c.name, fmt_ms(t["plain"]), fmt_ms(t["options"]),
                     fmt_ratio(ratio(t["options"], t["plain"]))])
        rep.record("options", c.name, t, options=opts)
    for b in batches:
        name = f"LeNet train step B={b}"
        progress(f"options: {name}")
        params, x, y = lenet_data(b)
        step = train_step(jaxconv_lenet, opt)
        plain, with_opts = jax.jit(step), jax.jit(step, compiler_options=opts)
        try:  # one step from the same state: new parameters, state and loss
            check_agreement(f"{name}: options vs plain", with_opts(params, opt.init(params), x, y),
                            plain(params, opt.init(params), x, y), st.tol)
        except AgreementError as e:
            rep.fail(name, e)
            rows.append([name, "DISAGREE", "-", "-"])
            continue
        contenders = {"plain": _stateful(plain, params, opt.init(params), x, y),
                      "options": _stateful(with_opts, params, opt.init(params), x, y)}
        t = st.measure(contenders)
        rows.append([name, fmt_ms(t["plain"]), fmt_ms(t["options"]),
                     fmt_ratio(ratio(t["options"], t["plain"]))])
        rep.record("options", name, t, options=opts, batch=b)
    rep.table(["case", "plain ms", "with options ms", "with / plain"], rows)


# ---------------------------------------------------------------------------
# Data-parallel LeNet on host devices (subprocesses)
# ---------------------------------------------------------------------------

DEVICE_COUNTS = (1, 2)


def devices_worker(n: int, st: Settings, out: Path) -> int:
    """Runs inside a process started with n host devices; writes its rows to ``out``."""
    devs = jax.devices()
    if len(devs) != n:
        print(f"expected {n} devices, got {devs}", file=sys.stderr)
        return 2
    opt = optax.sgd(LR, momentum=MOMENTUM)
    records = []
    for b in (128, 500):
        if not st.wanted(f"lenet data-parallel b={b}"):
            continue
        params, x, y = lenet_data(b)
        ref = jax.jit(train_step(jaxconv_lenet, opt))(params, opt.init(params), x, y)
        contenders = {}
        for m in sorted({1, n}):
            mesh = jax.sharding.Mesh(np.array(devs[:m]), ("batch",))
            rep_s, bat_s = NamedSharding(mesh, P()), NamedSharding(mesh, P("batch"))
            step = jax.jit(train_step(jaxconv_lenet, opt), in_shardings=(rep_s, rep_s, bat_s, bat_s),
                           out_shardings=(rep_s, rep_s, rep_s))
            p, s = jax.device_put(params, rep_s), jax.device_put(opt.init(params), rep_s)
            xs, ys = jax.device_put(x, bat_s), jax.device_put(y, bat_s)
            try:  # same updated parameters and loss as the unsharded step
                got = step(p, s, xs, ys)
                check_agreement(f"data-parallel B={b} on {m} device(s)", (got[0], got[2]),
                                (ref[0], ref[2]), st.tol)
            except AgreementError as e:
                print(e, file=sys.stderr)
                return 3
            contenders[f"{m} device(s)"] = _stateful(step, p, s, xs, ys)
        t = st.measure(contenders)
        records.append({"batch": b, "timings": {k: v.as_dict() for k, v in t.items()}})
    out.write_text(json.dumps(records))
    return 0


def run_devices(st: Settings, rep: Report, argv_settings: list[str]) -> None:
    if not any(st.wanted(f"lenet data-parallel b={b}") for b in (128, 500)):
        return
    rep.section(
        "Data-parallel LeNet train step on host devices",
        ["jaxconv's LeNet step jitted with the batch sharded over a `jax.sharding.Mesh` "
         "(`NamedSharding`, parameters replicated; XLA inserts the gradient all-reduce), "
         "one subprocess per host-device count N "
         "(`XLA_FLAGS=--xla_force_host_platform_device_count=N`, CPU). The N=2 process "
         "times the step on 1 and on 2 of its devices interleaved; `time / 1 device` is "
         "the time ratio to the 1-device step of the same process (< 1 = two devices faster). Host devices share this machine's "
         "cores, so this measures the partitioner's overhead, not a speed-up from new "
         "hardware."])
    rows = []
    for n in DEVICE_COUNTS:
        progress(f"devices: subprocess with {n} host device(s)")
        env = dict(os.environ)
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                            f" --xla_force_host_platform_device_count={n}").strip()
        env["JAX_PLATFORMS"] = "cpu"
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "devices.json"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--devices-worker", str(n),
                   "--devices-out", str(out), *argv_settings]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode:
                rep.fail(f"devices N={n}", RuntimeError(
                    f"worker exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}"))
                continue
            records = json.loads(out.read_text())
        for r in records:
            t = {k: Timing(tuple(v["samples_s"]), v["calls_per_round"])
                 for k, v in r["timings"].items()}
            b = r["batch"]
            for k, tm in t.items():
                rows.append([str(n), k, str(b), f"{b / tm.median:,.0f}", fmt_ms(tm),
                             fmt_ratio(ratio(tm, t.get("1 device(s)")))])
            rep.record("devices", f"LeNet data-parallel N={n} B={b}", t, host_devices=n, batch=b)
    rep.table(["host devices N", "step on", "batch", "img/s", "ms", "time / 1 device"], rows)


# ---------------------------------------------------------------------------
# jaxconv.signal vs scipy.signal
# ---------------------------------------------------------------------------


def run_signal(st: Settings, rep: Report) -> None:
    cases = [(f"signal 300x300 'same' * {k}x{k}", k) for k in (300, 31)]
    cases = [c for c in cases if st.wanted(c[0])]
    if not cases:
        return
    rep.section(
        "jaxconv.signal vs scipy.signal (float32, forward only)",
        ["`convolve` with `method=\"auto\"` on both sides, and `fftconvolve`; jax.scipy's "
         "`convolve` (always direct) for the small kernel. ms as median (min); ratios of "
         "median times (< 1 = jaxconv faster)."])
    try:
        import jaxconv.signal as jsig

        missing = [f for f in ("convolve", "fftconvolve") if not hasattr(jsig, f)]
        if missing:
            raise ImportError(f"it has no {', '.join(missing)}")
    except ImportError as e:
        print(f"jaxconv.signal not available ({e})")
        return
    try:
        import scipy.signal as ssig
    except ImportError:
        print("scipy not installed (`pip install scipy`): no reference to compare with")
        return
    import jax.scipy.signal as jss

    rows = []
    for i, (name, k) in enumerate(cases):
        progress(name)
        a_np, b_np = _rng_arrays(20 + i, ((300, 300), 1.0), ((k, k), 1.0))
        a, b = jnp.asarray(a_np), jnp.asarray(b_np)
        jconv = jax.jit(lambda a, b: jsig.convolve(a, b, mode="same"))
        jfft = jax.jit(lambda a, b: jsig.fftconvolve(a, b, mode="same"))
        contenders: dict[str, Callable[[], Any]] = {
            "jaxconv convolve": lambda jconv=jconv, a=a, b=b: jconv(a, b),
            "jaxconv fftconvolve": lambda jfft=jfft, a=a, b=b: jfft(a, b),
            "scipy convolve": lambda a=a_np, b=b_np: ssig.convolve(a, b, mode="same"),
            "scipy fftconvolve": lambda a=a_np, b=b_np: ssig.fftconvolve(a, b, mode="same"),
        }
        if k <= 31:
            jsc = jax.jit(lambda a, b: jss.convolve(a, b, mode="same"))
            contenders["jax.scipy convolve"] = lambda jsc=jsc, a=a, b=b: jsc(a, b)
        want = ssig.convolve(a_np.astype(np.float64), b_np.astype(np.float64), mode="same")
        try:
            agree = check_all(name, contenders, want, st.tol, "scipy float64")
        except AgreementError as e:
            rep.fail(name, e)
            rows.append([name, "DISAGREE"] + ["-"] * 6)
            continue
        t = st.measure(contenders)
        rows.append([name] + [fmt_ms(t.get(cn)) for cn in (
            "jaxconv convolve", "jaxconv fftconvolve", "scipy convolve", "scipy fftconvolve",
            "jax.scipy convolve")] + [
            fmt_ratio(ratio(t["jaxconv convolve"], t["scipy convolve"])),
            fmt_ratio(ratio(t["jaxconv fftconvolve"], t["scipy fftconvolve"]))])
        rep.record("signal", name, t, agreement_vs_scipy_float64=agree)
    rep.table(["case", "jaxconv convolve ms", "jaxconv fftconvolve ms", "scipy convolve ms",
               "scipy fftconvolve ms", "jax.scipy convolve ms", "convolve jaxconv/scipy",
               "fftconvolve jaxconv/scipy"], rows)


# ---------------------------------------------------------------------------
# Separable vs full depthwise conv
# ---------------------------------------------------------------------------


def _separable_setup(sep: Callable[..., Any], x: jax.Array, kh: np.ndarray, kw: np.ndarray,
                     pad: int, groups: int, tol: float):
    """How ``separable_conv`` takes its kernels, found by agreement with depthwise lax.

    Tries one ``(C, k)`` kernel per axis (every channel its own), then one
    ``(k,)`` kernel per axis shared by every channel. Returns ``(form, kernels,
    full)`` -- the kernels list to pass and the equivalent depthwise kernel
    ``(C, 1, k, k)`` -- or None when neither form agrees.
    """
    forms = {
        "(C, k) per axis": [kh, kw],
        "(k,) per axis, shared by the channels": [kh[0], kw[0]],
    }
    for form, ks in forms.items():
        if ks[0].ndim == 2:
            full = (ks[0][:, :, None] * ks[1][:, None, :])[:, None]
        else:
            full = np.broadcast_to(np.outer(ks[0], ks[1]), (groups, 1, *kh.shape[1:] * 2))
        full = jnp.asarray(np.ascontiguousarray(full))
        kernels = [jnp.asarray(k) for k in ks]
        want = lax.conv_general_dilated(x, full, (1, 1), [(pad, pad)] * 2,
                                        feature_group_count=groups)
        try:
            check_agreement("separable_conv", sep(x, kernels, padding=pad), want, tol)
        except (AgreementError, ValueError, TypeError):
            continue
        return form, kernels, full
    return None


def run_separable(st: Settings, rep: Report) -> None:
    cases = [(f"separable {k}x{k} C=32 64x64 N=4 pad {k // 2}", k) for k in (7, 15)]
    cases = [c for c in cases if st.wanted(c[0])]
    if not cases:
        return
    notes = ["`jaxconv.separable_conv(x, [k_h, k_w])` (one 1-D kernel per spatial axis) "
             "against `jaxconv.conv` and `lax` depthwise with the outer-product kernel "
             "(C, 1, k, k); gradients with respect to x and to each side's own kernel arrays; "
             "agreement checked on the output and d x. ms as median (min); ratios of median "
             "times (< 1 = separable faster)."]
    sep = getattr(jaxconv, "separable_conv", None)
    if sep is None:  # not re-exported (yet): the toolbox module itself
        try:
            from jaxconv._src.local import separable_conv as sep
        except ImportError:
            sep = None
    if sep is None:
        rep.section("Separable convolution vs the full depthwise kernel", notes)
        print("jaxconv.separable_conv not available")
        return
    rows, forms = [], set()
    for i, (name, k) in enumerate(cases):
        progress(name)
        c_, pad = 32, k // 2
        x_np, kh_np, kw_np = _rng_arrays(40 + i, ((4, c_, 64, 64), 1.0), ((c_, k), 1 / k),
                                         ((c_, k), 1 / k))
        x = jnp.asarray(x_np)
        setup = _separable_setup(sep, x, kh_np, kw_np, pad, c_, st.tol)
        if setup is None:
            rep.fail(name, AgreementError(
                "separable_conv(x, [k_h, k_w]) equals the depthwise conv with the outer-product "
                "kernel neither with (C, k) nor with (k,) kernels"))
            rows.append([name, "DISAGREE"] + ["-"] * 4)
            continue
        form, kernels, full = setup
        forms.add(form)

        def sep_fn(x, kh, kw, pad=pad):
            return sep(x, [kh, kw], padding=pad)

        def lax_dw(x, w, pad=pad):
            return lax.conv_general_dilated(x, w, (1, 1), [(pad, pad)] * 2,
                                            feature_group_count=c_)

        def jc_dw(x, w, pad=pad):
            return jaxconv.conv(x, w, padding=pad, groups=c_)

        s_sep, s_jc, s_lax = _vjp_step(sep_fn), _vjp_step(jc_dw), _vjp_step(lax_dw)
        ct = jnp.asarray(_rng_arrays(50 + i, (x_np.shape, 1.0))[0])
        want = s_lax(ct, x, full)
        try:
            agree = {
                "separable (y, dx)": check_agreement(
                    f"{name}: separable (y, dx)", s_sep(ct, x, *kernels)[:2], want[:2], st.tol),
                "jaxconv depthwise": check_agreement(
                    f"{name}: jaxconv depthwise", s_jc(ct, x, full), want, st.tol),
            }
        except AgreementError as e:
            rep.fail(name, e)
            rows.append([name, "DISAGREE"] + ["-"] * 4)
            continue
        t = st.measure({
            "separable": lambda s=s_sep, ct=ct, x=x, ks=kernels: s(ct, x, *ks),
            "jaxconv depthwise": lambda s=s_jc, ct=ct, x=x, w=full: s(ct, x, w),
            "lax depthwise": lambda s=s_lax, ct=ct, x=x, w=full: s(ct, x, w),
        })
        ts, tj, tl = t["separable"], t["jaxconv depthwise"], t["lax depthwise"]
        rows.append([name, fmt_ms(ts), fmt_ms(tj), fmt_ms(tl), fmt_ratio(ratio(ts, tj)),
                     fmt_ratio(ratio(ts, tl))])
        rep.record("separable", name, t, kernel_form=form, agreement_vs_lax=agree)
    rep.section("Separable convolution vs the full depthwise kernel (float32, forward + "
                "backward)", notes + [f"Kernel form accepted: {', '.join(sorted(forms))}."
                                      if forms else ""])
    rep.table(["case", "separable ms", "jaxconv depthwise ms", "lax depthwise ms",
               "separable/jaxconv depthwise", "separable/lax"], rows)


# ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    for s in SECTIONS:
        ap.add_argument(f"--{s}", action="store_true", help=f"run the {s} section")
    ap.add_argument("--quick", action="store_true", help="fewer rounds, shorter blocks")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 9, --quick 3)")
    ap.add_argument("--min-block", type=float,
                    help="seconds per timed block (default 0.1, --quick 0.02)")
    ap.add_argument("--cases", action="append", default=[], metavar="SUBSTR",
                    help="only rows whose name contains SUBSTR (case-insensitive; repeatable)")
    ap.add_argument("--tol", type=float,
                    help="agreement tolerance, max |diff| / max |reference| "
                         "(default 5e-3 on CPU: XLA's own float32 weight-gradient convolution "
                         "is 1.2e-3 off float64 at LeNet conv2, batch 500; 2e-2 on "
                         "accelerators: TF32 / bf16 passes)")
    ap.add_argument("--json", type=Path, help="also write every sample to this JSON file")
    ap.add_argument("--torch-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--devices-worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--devices-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be >= 1")
    if args.min_block is not None and args.min_block < 0:
        ap.error("--min-block must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    st = Settings(
        rounds=args.rounds or (3 if args.quick else 9),
        min_block_s=args.min_block if args.min_block is not None else
        (0.02 if args.quick else 0.1),
        tol=args.tol or (5e-3 if jax.default_backend() == "cpu" else 2e-2),
        matmul_n=1024 if args.quick else 2048,
        cases=tuple(c.lower() for c in args.cases),
        quick=args.quick,
    )
    if torch is not None:
        torch.set_num_threads(args.torch_threads)
    if args.devices_worker:
        return devices_worker(args.devices_worker, st, args.devices_out)

    chosen = [s for s in SECTIONS if getattr(args, s)] or list(SECTIONS)
    shown = shlex.join(sys.argv[1:] if argv is None else argv)
    print("## jaxconv benchmarks\n")
    print(f"`python benchmarks/run.py {shown}`".replace(" `", "`"), end=", ")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; jaxconv from "
          f"`{Path(jaxconv.__file__).parent}`.")
    torch_line = ("torch not installed (its columns show -)" if torch is None else
                  f"torch {torch.__version__} on {_torch_device()}, "
                  f"{torch.get_num_threads()} threads")
    print("; ".join([*machine_lines(), torch_line]) + ".")
    print(f"\n{st.rounds} interleaved rounds per row, each contender's timed block >= "
          f"{st.min_block_s} s; compile and warm-up excluded; agreement with the reference "
          f"checked first (tolerance {st.tol:.0e} of the reference's max |value|). Ratios are "
          "time ratios of medians: **< 1 = jaxconv faster**.")
    rep = Report()
    passthrough = (["--quick"] if args.quick else []) + (
        ["--rounds", str(args.rounds)] if args.rounds else []) + (
        ["--min-block", str(args.min_block)] if args.min_block is not None else []) + (
        [f"--cases={c}" for c in args.cases]) + (
        ["--tol", str(args.tol)] if args.tol else [])
    t0 = time.perf_counter()
    runners: dict[str, Callable[[], None]] = {
        "ops": lambda: run_ops(st, rep),
        "lenet": lambda: run_lenet(st, rep),
        "roofline": lambda: run_roofline(st, rep),
        "options": lambda: run_options(st, rep),
        "devices": lambda: run_devices(st, rep, passthrough),
        "signal": lambda: run_signal(st, rep),
        "separable": lambda: run_separable(st, rep),
    }
    for s in chosen:
        runners[s]()
    print(f"\n({time.perf_counter() - t0:.0f} s in all.)")
    if rep.failures:
        print("\n**Agreement failures (not timed):**\n")
        for f in rep.failures:
            print(f"- {f}")
    if args.json:
        args.json.write_text(json.dumps({
            "settings": dataclasses.asdict(st),
            "machine": machine_lines(),
            "torch": None if torch is None else torch.__version__,
            "sections": rep.records,
            "failures": rep.failures,
        }, indent=1))
    return 1 if rep.failures else 0


if __name__ == "__main__":
    sys.exit(main())
