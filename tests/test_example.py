"""examples/lenet_mnist.py, run in-process through its main(argv) on a tiny IDX folder."""

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from jaxconv import train
from jaxconv.datasets import mnist

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lenet_mnist.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("lenet_mnist_example", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def idx_folder(tmp_path_factory):
    """Four gzipped IDX files: 72 training images (66 train + 6 val) and 12 test images."""
    folder = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for role, n in (("train", 72), ("test", 12)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.uniform(0, 1, (n, 28, 28)) > 0.8).astype(np.uint8) * 255
        mnist.write_idx(folder / mnist.FILES[f"{role}_images"], images)
        mnist.write_idx(folder / mnist.FILES[f"{role}_labels"], labels)
    return folder


def _run(example, idx_folder, out, *extra):
    argv = ["--data", str(idx_folder), "--variant", "lenet5", "--batch-size", "32", "--limit", "40",
            "--out", str(out), *extra]
    return example.main(argv)


def _no_temp_files(folder):
    return [p for p in os.listdir(folder) if p.startswith(".") or p.endswith(".tmp")] == []


def test_smoke_run_writes_every_output(example, idx_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(example, idx_folder, out, "--epochs", "1") == 0
    captured = capsys.readouterr()
    assert "from the IDX files in" in captured.out
    assert "61,706 parameters" in captured.out
    assert "epoch   1/1  train loss" in captured.out and "img/s" in captured.out
    assert "devices: 1 x cpu" in captured.out
    assert "epoch 1/1" not in captured.err  # stderr is not a terminal: no progress bar
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "filters.png", "learning_curves.png", "metrics.json"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert isinstance(metrics, list) and len(metrics) == 1
    rec = metrics[0]
    for k in ("epoch", "train_loss", "val_error", "test_error", "seconds", "images_per_second"):
        assert k in rec
    assert rec["epoch"] == 1 and 0 <= rec["val_error"] <= 1 and 0 <= rec["test_error"] <= 1
    for png in ("filters.png", "learning_curves.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with np.load(out / "checkpoint.npz") as f:
        meta = json.loads(str(f["meta"]))
    assert meta["epoch"] == 1 and meta["config"]["variant"] == "lenet5" and meta["config"]["limit"] == 40


def test_progress_bar_only_on_a_terminal(example, idx_folder, tmp_path, capsys, monkeypatch):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert _run(example, idx_folder, tmp_path / "run", "--epochs", "1") == 0
    assert "epoch 1/1" in term.getvalue() and "batch" in term.getvalue()  # the tqdm bar
    assert "epoch   1/1  train loss" in capsys.readouterr().out


def test_interrupt_then_resume(example, idx_folder, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    original = train.Trainer.train_epoch

    def interrupted_in_second_epoch(self, state, *a, **k):
        if state.epoch == 1:
            raise KeyboardInterrupt
        return original(self, state, *a, **k)

    monkeypatch.setattr(train.Trainer, "train_epoch", interrupted_in_second_epoch)
    assert _run(example, idx_folder, out, "--epochs", "2", "--no-progress") == 130
    err = capsys.readouterr().err
    assert "interrupted: checkpoint of epoch 1 written to" in err and "--resume" in err
    assert _no_temp_files(out)
    monkeypatch.setattr(train.Trainer, "train_epoch", original)

    # Flags that contradict the checkpoint are refused; settings come from it otherwise.
    with pytest.raises(SystemExit) as e:
        example.main(["--resume", "--out", str(out), "--data", str(idx_folder), "--variant", "tutorial"])
    assert e.value.code == 2
    assert "was trained with --variant lenet5; got --variant tutorial" in capsys.readouterr().err

    # Other data (same sizes, other labels) is refused too: the schedule and metrics depend on it.
    other = tmp_path / "other_idx"
    other.mkdir()
    for name in mnist.FILES.values():
        (other / name).write_bytes((idx_folder / name).read_bytes())
    labels = mnist.read_idx(idx_folder / mnist.FILES["train_labels"])
    mnist.write_idx(other / mnist.FILES["train_labels"], (labels + 1) % 10)
    with pytest.raises(SystemExit) as e:
        example.main(["--resume", "--out", str(out), "--data", str(other), "--epochs", "2"])
    assert e.value.code == 2
    assert "was trained on other data (40 / 6 / 12 images" in capsys.readouterr().err

    assert example.main(["--resume", "--out", str(out), "--data", str(idx_folder), "--epochs", "2",
                         "--no-progress"]) == 0
    captured = capsys.readouterr().out
    assert "resuming from" in captured and "after epoch 1" in captured
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "filters.png", "learning_curves.png", "metrics.json"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--epochs", "-1"], r"argument --epochs: expected a number of epochs \(an integer >= 1\); got -1"),
        (["--epochs", "two"], r"argument --epochs: expected a number of epochs .*got 'two'"),
        (["--batch-size", "0"], r"argument --batch-size: expected a batch size \(an integer >= 1\); got 0"),
        (["--seed", "-3"], r"argument --seed: expected a seed \(an integer >= 0 and < 2147483648\); got -3"),
        (["--variant", "lenet7"], r"argument --variant: invalid choice: 'lenet7'"),
        (["--lr", "0"], r"argument --lr: expected a learning rate, a number in \(0.0, inf\); got '0'"),
        (["--momentum", "1"], r"argument --momentum: expected a momentum, a number in \[0.0, 1.0\); got '1'"),
        (["--data", "/no/such/mnist"], r"argument --data: .*got '/no/such/mnist', which does not exist"),
        (["--data", "cached"], r"argument --data: .*got 'cached', which does not exist"),
        (["--resume"], r"argument --resume: no checkpoint at"),
        (["--devices", "0"], r"argument --devices: expected a device count \(an integer >= 1\); got 0"),
        (["--devices", "64"], r"error: --devices 64: this host has 1 local device\(s\) \(cpu\)"),
    ],
)
def test_bad_cli_values_exit_before_any_work(example, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        example.main(["--out", str(out), *args])
    assert e.value.code == 2
    import re

    assert re.search(message, capsys.readouterr().err)
    assert not out.exists()  # nothing written


def test_data_path_errors_leave_nothing_behind(example, idx_folder, tmp_path, capsys):
    out = tmp_path / "out"
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(SystemExit) as e:
        example.main(["--out", str(out), "--data", str(a_file)])
    assert e.value.code == 2 and "which is a file" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as e:  # a folder without the IDX files
        example.main(["--out", str(out), "--data", str(empty)])
    assert e.value.code == 2 and "has neither train-images-idx3-ubyte.gz" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for name in mnist.FILES.values():
        (corrupt / name).write_bytes((idx_folder / name).read_bytes()[:30])
    with pytest.raises(SystemExit) as e:  # truncated files
        example.main(["--out", str(out), "--data", str(corrupt)])
    assert e.value.code == 2 and "lenet_mnist.py: error: --data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # --out is a file
        example.main(["--out", str(a_file)])
    assert e.value.code == 2 and "argument --out:" in capsys.readouterr().err
    assert not out.exists()


def test_help_mentions_every_flag_and_full_mnist(example, capsys):
    with pytest.raises(SystemExit) as e:
        example.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--epochs", "--batch-size", "--lr", "--decay", "--momentum", "--seed", "--data",
                 "--variant", "--augment", "--checkpoint-dir", "--resume", "--out", "--limit"):
        assert flag in text
    assert "--data download" in text
