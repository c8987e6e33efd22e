"""Where a LeNet train step's time goes: per-op self times for jaxconv, lax and torch.

    python benchmarks/profile_step.py                    # batch 128: jaxconv, lax, torch
    python benchmarks/profile_step.py --batch 500 --top 30 --only jaxconv torch

``benchmarks/run.py`` says how fast a step is; this says why. The step is
the one ``run.py`` times (the tutorial LeNet, optax SGD with momentum). For
the JAX contenders it records ``--steps`` steps under ``jax.profiler.trace``
and reads the trace's events back: every event that is an instruction of the
compiled step (a fusion, a matrix product, a loop) gets its *self* time (its
duration less that of the events it encloses on the same thread), summed over
the steps and divided by their number. Each row shows what XLA names the
instruction, its result shape, how many times it runs per step (more than
once inside a chunk loop), which pass it belongs to (``fwd``, ``bwd`` or
``update``, from the JAX operation it came from) and that operation. For
torch it prints ``torch.profiler``'s self CPU time per operator and input
shapes.

Timings on a shared machine drift (see ``benchmarks/harness.py``); compare
rows within one run, as fractions of the step. XLA's own CPU convolutions run on
Eigen's thread pool, whose work the trace does not charge to the instruction: a
``convolution`` row shows little more than its dispatch.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

# Profile the jaxconv of this checkout, whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax
import optax
from harness import markdown_table
from run import LR, MOMENTUM, TorchLeNet, jaxconv_lenet, lax_lenet, lenet_data, train_step

try:
    import torch
except ImportError:  # torch is the optional `bench` extra
    torch = None  # type: ignore[assignment]

CONTENDERS = ("jaxconv", "lax", "torch")


def self_times(events: Iterable[dict[str, Any]]) -> tuple[collections.Counter[str],
                                                           collections.Counter[str]]:
    """Self time (µs) and count per event name, from complete ("X") trace events.

    Events nest per (process, thread); an event's self time is its duration
    less the durations of the events directly inside it.
    """
    threads: dict[tuple[Any, Any], list[dict[str, Any]]] = collections.defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            threads[(e.get("pid"), e.get("tid"))].append(e)
    total: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    for evs in threads.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: list[dict[str, Any]] = []
        for e in evs:
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
                stack.pop()
            if stack:
                total[stack[-1]["name"]] -= e["dur"]
            total[e["name"]] += e["dur"]
            count[e["name"]] += 1
            stack.append(e)
    return total, count


_INSTR = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\(?[a-z0-9]+\[[\d,]*\])[^\n]*$", re.M)
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_HEAD = re.compile(r"(?:ENTRY )?%?([\w.\-]+) ")


def hlo_instructions(hlo_text: str) -> dict[str, tuple[str, str]]:
    """Instruction name -> (result type, the JAX op_name it came from) of a compiled module.

    XLA keeps no op_name on its library fusions (the matrix products). Such
    a fusion takes the op_name of the computation it calls (its dot, else
    its first named instruction); failing that, ``<scope>/dot`` where scope
    is the pass and layer of the computation it sits in (e.g. a chunk loop's
    body), from that computation's first named instruction.
    """
    blocks = re.split(r"\n(?=\S)", hlo_text)  # one computation per unindented header
    called: dict[str, str] = {}
    for block in blocks:
        head = _HEAD.match(block)
        if not head:
            continue
        dots = [m.group(1) for m in re.finditer(r" dot\(.*?op_name=\"([^\"]*)\"", block)]
        names = dots or _OP_NAME.findall(block)
        if names:
            called[head.group(1)] = names[0]
        elif " dot(" in block:
            called[head.group(1)] = "dot"
    out = {}
    for block in blocks:
        named = [n for n in _OP_NAME.findall(block) if n.startswith("jit(")]
        scope = "/".join(named[0].split("/")[:2]) if named else ""
        for m in _INSTR.finditer(block):
            op = _OP_NAME.search(m.group(0))
            calls = re.search(r"calls=%?([\w.\-]+)", m.group(0))
            name = op.group(1) if op else called.get(calls.group(1), "") if calls else ""
            if name and not name.startswith("jit(") and scope:
                name = f"{scope}/{name}"
            out[m.group(1)] = (m.group(2), name)
    return out


def scope_of(op_name: str) -> tuple[str, str, str]:
    """(pass, layer, op) of an op_name like ``jit(step)/transpose(jvp(conv2))/while/body/dot``.

    The pass is ``fwd`` (under ``jvp``), ``bwd`` (under ``transpose``) or
    ``update`` (neither: the loss's and the optimizer's own work); the layer
    is the :func:`jax.named_scope` that ``jaxconv.nn.Sequential`` puts around
    each layer (empty outside layers); ``?`` when XLA kept no op_name.
    """
    if not op_name.startswith("jit("):
        return "?", "", op_name
    parts = op_name.split("/")[1:]
    if not parts:
        return "update", "", ""
    first = parts[0]
    which = "bwd" if first.startswith("transpose(") else "fwd" if first.startswith("jvp(") else None
    if which is None:
        return "update", "", "/".join(parts[-3:])
    layer = first.rstrip(")").rsplit("(", 1)[-1]
    return which, layer, "/".join(parts[1:][-3:])


def profile_jax(apply: Callable[..., Any], batch: int, steps: int, top: int) -> tuple[str, float]:
    """The Markdown table of one JAX contender's step, and its mean step time (ms)."""
    opt = optax.sgd(LR, momentum=MOMENTUM)
    p, x, y = lenet_data(batch)
    s = opt.init(p)
    step = jax.jit(train_step(apply, opt))
    compiled = step.lower(p, s, x, y).compile()
    instructions = hlo_instructions(compiled.as_text())
    for _ in range(3):
        p, s, loss = step(p, s, x, y)
    jax.block_until_ready(loss)
    t0 = time.perf_counter()
    for _ in range(steps):
        p, s, loss = step(p, s, x, y)
    jax.block_until_ready(loss)
    step_ms = (time.perf_counter() - t0) / steps * 1e3
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            for _ in range(steps):
                p, s, loss = step(p, s, x, y)
            jax.block_until_ready(loss)
        traces = sorted(Path(d).rglob("*.trace.json.gz"))
        if not traces:
            raise RuntimeError(f"profile_step: jax.profiler.trace wrote no trace under {d}")
        with gzip.open(traces[-1], "rt") as f:
            data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    total, count = self_times(events)
    ops = [(name, us) for name, us in total.items() if name in instructions]
    ops.sort(key=lambda t: -t[1])
    traced_ms = sum(us for _, us in ops) / steps / 1e3
    rows = []
    for name, us in ops[:top]:
        shape, op_name = instructions[name]
        which, layer, op = scope_of(op_name)
        ms = us / steps / 1e3
        rows.append([name, shape, f"{count[name] / steps:g}", which, layer, op, f"{ms:.3f}",
                     f"{100 * ms / traced_ms:.1f}"])
    table = markdown_table(["HLO instruction", "result", "runs/step", "pass", "scope", "op",
                            "ms/step", "% of ops"], rows)
    by_layer: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for name, us in ops:
        which, layer, _ = scope_of(instructions[name][1])
        by_layer[layer or "(none)"][which] += us / steps / 1e3
    passes = ("fwd", "bwd", "update", "?")
    layer_rows = [[layer] + [f"{c[p]:.2f}" for p in passes] + [f"{sum(c.values()):.2f}"]
                  for layer, c in sorted(by_layer.items(), key=lambda kv: -sum(kv[1].values()))]
    layers = markdown_table(["scope", "fwd ms", "bwd ms", "update ms", "? ms", "total ms"],
                            layer_rows)
    return (f"step {step_ms:.2f} ms (untraced mean of {steps}); the compiled step's instructions "
            f"account for {traced_ms:.2f} ms per traced step.\n\nBy named scope (each jaxconv.nn layer has one):\n\n{layers}\n\n"
            f"Instructions:\n\n{table}", step_ms)


def profile_torch(batch: int, steps: int, top: int) -> tuple[str, float]:
    """The Markdown table of torch's step (self CPU time per operator and input shapes)."""
    from torch.profiler import ProfilerActivity, profile

    p, x, y = lenet_data(batch)
    tl = TorchLeNet(p, x, y)
    for _ in range(3):
        tl.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        tl.step()
    step_ms = (time.perf_counter() - t0) / steps * 1e3
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            tl.step()
    avgs = sorted(prof.key_averages(group_by_input_shape=True),
                  key=lambda a: -a.self_cpu_time_total)
    total_ms = sum(a.self_cpu_time_total for a in avgs) / steps / 1e3
    rows = []
    for a in avgs[:top]:
        ms = a.self_cpu_time_total / steps / 1e3
        shapes = ", ".join(str(s) for s in a.input_shapes if s) if a.input_shapes else ""
        rows.append([a.key, shapes[:60], f"{a.count / steps:g}", f"{ms:.3f}",
                     f"{100 * ms / total_ms:.1f}"])
    table = markdown_table(["operator", "input shapes", "calls/step", "self ms/step",
                            "% of ops"], rows)
    return (f"step {step_ms:.2f} ms (unprofiled mean of {steps}); operators' self time "
            f"{total_ms:.2f} ms per profiled step.\n\n{table}", step_ms)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    ap.add_argument("--steps", type=int, default=20, help="steps traced (default 20)")
    ap.add_argument("--top", type=int, default=20, help="rows per contender (default 20)")
    ap.add_argument("--only", nargs="+", choices=CONTENDERS, default=list(CONTENDERS),
                    help="contenders to profile (default: all)")
    a = ap.parse_args(argv)
    for name in ("batch", "steps", "top"):
        if getattr(a, name) < 1:
            ap.error(f"--{name} must be a positive integer; got {getattr(a, name)}")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    print(f"## LeNet train step profile, batch {a.batch}\n\n`python benchmarks/profile_step.py "
          f"{' '.join(sys.argv[1:])}`".rstrip() + f", {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"jax {jax.__version__} ({jax.default_backend()}).")
    for name in a.only:
        print(f"\n### {name}\n")
        if name == "torch":
            if torch is None:
                print("torch is not installed (`pip install -e .[bench]`); skipped.")
                continue
            text, _ = profile_torch(a.batch, a.steps, a.top)
        else:
            apply = jaxconv_lenet if name == "jaxconv" else lax_lenet
            text, _ = profile_jax(apply, a.batch, a.steps, a.top)
        print(text)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
