"""The examples train: shortened runs must lower the loss; the spiral run reaches 0.95."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name, monkeypatch):
    """Import examples/<name>.py as a script would see it (its directory on sys.path)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spiral_dataset_has_three_classes_of_100_points(monkeypatch):
    spiral = load_example("spiral", monkeypatch)
    x, t = spiral.make_spiral()
    assert x.shape == (300, 2)
    assert sorted(set(t.tolist())) == [0, 1, 2]
    assert (t == 2).sum() == 100


def test_spiral_loss_falls_in_a_short_run(monkeypatch):
    spiral = load_example("spiral", monkeypatch)
    lines = []
    history = spiral.train(epochs=40, log=lines.append)
    losses = [loss for loss, _ in history]
    assert len(lines) == 40
    assert "epoch   1  loss" in lines[0]
    assert losses[-1] < 0.8 * losses[0]


def test_spiral_reaches_95_percent_accuracy(monkeypatch):
    spiral = load_example("spiral", monkeypatch)
    history = spiral.train(log=lambda line: None)
    assert history[-1][1] >= 0.95


def test_cnn_images_differ_only_in_shape_not_ink(monkeypatch):
    cnn = load_example("cnn", monkeypatch)
    x, t = cnn.make_bars_and_crosses(n=50)
    assert x.shape == (50, 1, cnn.SIZE, cnn.SIZE)
    ink = (x > 0.5).sum(axis=(1, 2, 3))
    assert set(ink[t == 0].tolist()) == set(ink[t == 1].tolist()) == {9}


def test_cnn_loss_falls_and_accuracy_rises(monkeypatch):
    cnn = load_example("cnn", monkeypatch)
    history = cnn.train(epochs=12, log=lambda line: None)
    (first_loss, first_acc), (last_loss, last_acc) = history[0], history[-1]
    assert last_loss < 0.85 * first_loss
    assert last_acc > first_acc


@pytest.mark.parametrize("name", ["spiral", "cnn"])
def test_examples_print_a_line_per_epoch(name, monkeypatch, capsys):
    example = load_example(name, monkeypatch)
    example.train(epochs=2)
    assert capsys.readouterr().out.count("loss") == 2
