"""One default digits_mlp trial through Lightning vs the same work in a plain torch loop.

Same config, data, model, optimizer, epochs and thread count; runs are interleaved so machine noise
hits both sides alike; medians and their ratio are printed. Also the import time of the trainer
(torch + lightning) in a fresh interpreter, which every worker pays once.

A third side runs the Lightning trial with one Lightning internal skipped, in this process only:
the device move ``self.log`` makes of its stored metric on every call (see
``result_metrics_not_moved``). hpo does not patch Lightning; this measures what an upstream
early return would save, beside the other two in the same run.

    python bench/train.py [--repeats 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from trainer import experiment, fit


def lightning_trial(cfg: DictConfig) -> float:
    """The trial as hpo runs it: ``fit.run`` (build, fit with per-epoch validation, test)."""
    return fit.run(cfg)["val_acc"]


@contextlib.contextmanager
def result_metrics_not_moved() -> Iterator[None]:
    """Lightning with ``_ResultMetric.to`` as a no-op while the block runs.

    ``_ResultCollection.log`` moves the stored metric to the logged value's device on every
    ``self.log`` call. On CPU it stays where it is, but the move still walks the metric's whole
    state and deep-copies its metadata, ~0.65 ms a call (cProfile of a 40-epoch trial).
    """
    from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultMetric

    moved = _ResultMetric.to
    _ResultMetric.to = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        _ResultMetric.to = moved  # type: ignore[method-assign]


def lightning_unmoved_trial(cfg: DictConfig) -> float:
    """``lightning_trial`` on a Lightning whose ``self.log`` skips the same-device move."""
    with result_metrics_not_moved():
        return lightning_trial(cfg)


def plain_trial(cfg: DictConfig) -> float:
    """The same work by hand: per-epoch train and validation passes, then the test pass.

    It keeps the same metrics as the LightningModule (mean train loss; val and test loss and
    accuracy), so the difference is the framework's, not less bookkeeping.
    """
    torch.manual_seed(cfg.seed)
    data = instantiate(cfg.data)
    data.setup()
    model = instantiate(cfg.model)
    optimizer = model.optimizer_factory(model.parameters())
    accuracy = 0.0
    for _ in range(cfg.trainer.max_epochs):
        model.train()
        loss_sum, seen = torch.zeros(()), 0
        for features, labels in data.train_dataloader():
            optimizer.zero_grad()
            loss = F.cross_entropy(model(features), labels)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(labels)
            seen += len(labels)
        _, accuracy = evaluate(model, data.val_dataloader())
    evaluate(model, data.test_dataloader())
    return accuracy


def evaluate(model: torch.nn.Module, batches: object) -> tuple[float, float]:
    """Mean loss and accuracy over ``batches``."""
    model.eval()
    loss_sum = hits = total = 0.0
    with torch.no_grad():
        for features, labels in batches:  # type: ignore[attr-defined]
            logits = model(features)
            loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
            hits += float((logits.argmax(dim=1) == labels).sum())
            total += len(labels)
    return loss_sum / total, hits / total


def timed(function: Callable[[DictConfig], float], cfg: DictConfig) -> tuple[float, float]:
    start = time.perf_counter()
    accuracy = function(cfg)
    return time.perf_counter() - start, accuracy


def import_seconds() -> float:
    code = (
        "import time; t = time.perf_counter(); import trainer.fit; print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    for name in ("lightning.pytorch", "lightning.fabric"):  # as a worker: no INFO line per fit
        logging.getLogger(name).setLevel(logging.WARNING)
    sides = {
        "lightning": lightning_trial,
        "plain": plain_trial,
        "lightning, no move": lightning_unmoved_trial,
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    accuracy: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as out:
        cfg = experiment.compose(
            "digits_mlp", [f"paths.output_dir={out}", f"threads={args.threads}"]
        )
        torch.set_num_threads(args.threads)
        lightning_trial(cfg)  # warm-up: first-call costs (lazy imports, allocator) hit neither side
        for _ in range(args.repeats):
            for name, function in sides.items():
                shutil.rmtree(Path(out, "csv"), ignore_errors=True)  # a fresh folder, as a trial
                seconds, accuracy[name] = timed(function, cfg)
                times[name].append(seconds)
    imports = [import_seconds() for _ in range(3)]
    lightning, plain, unmoved = (statistics.median(times[k]) for k in sides)
    epochs = cfg.trainer.max_epochs
    print(
        f"digits_mlp default trial, {epochs} epochs, {args.threads} thread(s), "
        f"median of {args.repeats} interleaved runs"
    )
    print(f"{'':<28}{'median s':>10}{'min s':>9}{'val_acc':>9}")
    for name in sides:
        print(
            f"{name + ' trial':<28}{statistics.median(times[name]):>10.3f}"
            f"{min(times[name]):>9.3f}{accuracy[name]:>9.3f}"
        )
    print(f"{'ratio lightning/plain':<28}{lightning / plain:>10.2f}   (goal <= 1.50)")
    # Each Lightning trial beside the plain one just after it: load that drifts over the run
    # (this machine is shared) moves both alike, so this ratio is steadier than the one above.
    pairs = zip(times["lightning"], times["plain"], strict=True)
    paired = statistics.median(light / bare for light, bare in pairs)
    print(f"{'ratio, median of pairs':<28}{paired:>10.2f}")
    print(
        f"{'ratio, no move/plain':<28}{unmoved / plain:>10.2f}"
        "   (Lightning without its per-log device move: upstream, not hpo)"
    )
    print(
        f"{'import trainer.fit':<28}{statistics.median(imports):>10.3f}  (median of 3, new process)"
    )


if __name__ == "__main__":
    main()
