"""The report page names each metric: in its best-trial section and in the table of all trials."""

from __future__ import annotations

import re

import optuna
from optuna.trial import TrialState
from trainer.retries import RetryAsNewAttempt

from orchestrator.reading import WorkerNames
from orchestrator.report._page import page
from tests.fronts import tell_values


def _headings(html: str) -> list[str]:
    return re.findall(r"<h[23][^>]*>(.*?)</h[23]>", html)


def test_a_multi_objective_page_shows_its_whole_front_with_metric_names() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    tell_values(study)
    front = sorted(study.best_trials, key=lambda t: t.number)
    commands = [f"python -m trainer.train t{trial.number}" for trial in front]
    html = page(study, {}, front, commands, summary="", metrics=("val_acc", "val_loss"))
    headings = _headings(html)
    assert headings[:3] == [
        "Pareto front: 2 trials",
        "trial 0: val_acc 0.9, val_loss 0.3",
        "trial 1: val_acc 0.8, val_loss 0.2",
    ]
    assert "python -m trainer.train t0" in html and "python -m trainer.train t1" in html
    assert "<th>val_acc</th><th>val_loss</th>" in html
    assert "<td>2</td><td>COMPLETE</td><td>0.7</td><td>0.4</td>" in html


def test_a_single_objective_page_names_its_metric() -> None:
    study = optuna.create_study(direction="maximize")
    for value in (0.5, 0.9):
        study.tell(study.ask(), value)
    html = page(study, {}, [study.best_trial], ["cmd"], summary="", metrics=("val_acc",))
    assert _headings(html)[:2] == ["best trial", "trial 1: val_acc 0.9"]
    assert "<th>val_acc</th>" in html


def test_the_table_says_why_a_trial_failed_when_it_was_pruned_and_what_it_retries() -> None:
    study = optuna.create_study(direction="maximize")
    failed = study.ask()
    failed.set_user_attr("fail_reason", "worker w1 died: OOM-killed (exit 137)")
    study.tell(failed, state=TrialState.FAIL)
    RetryAsNewAttempt(max_retry=1)(study, study.trials[0])
    study.tell(study.ask(), 0.9)  # the retry, trial 1
    for epochs in (3, 1):
        pruned = study.ask()
        for epoch in range(epochs):
            pruned.report(0.5, step=epoch)
        study.tell(pruned, state=TrialState.PRUNED)

    html = page(study, {}, [study.best_trial], ["cmd"], summary="", metrics=("val_acc",))
    notes = re.findall(r"<td>([^<]*)</td></tr>", html)  # the last cell of each row
    assert notes == [
        "worker w1 died: OOM-killed (exit 137)",
        "retry of trial 0",
        "pruned after 3 epochs",
        "pruned after 1 epoch",
    ]
    assert "<th>note</th>" in html


def _labelled(machines: tuple[str | None, ...]) -> optuna.Study:
    """One trial per machine, each run by that machine's worker 0 (every launch has one)."""
    study = optuna.create_study(direction="maximize")
    for machine in machines:
        trial = study.ask()
        trial.set_user_attr("worker", 0)
        if machine is not None:  # else a trial from before trials were labelled so
            trial.set_user_attr("machine", machine)
        study.tell(trial, 0.5)
    return study


def test_workers_are_named_with_their_machine_only_when_a_study_ran_on_several() -> None:
    def workers(study: optuna.Study) -> list[str]:
        html = page(study, {}, [study.best_trial], ["cmd"], summary="", metrics=("val_acc",))
        return re.findall(r"<td>(w[^<]*)</td>", html)

    assert workers(_labelled(("cpu-1", "cpu-1"))) == ["w0", "w0"]
    assert workers(_labelled(("cpu-1", "gpu-2", None))) == ["w0@cpu-1", "w0@gpu-2", "w0"]


def test_a_worker_of_a_second_launch_beside_the_first_is_named_with_its_log() -> None:
    study = optuna.create_study(direction="maximize")
    # None: a trial from before workers were told their log's name
    for log in ("worker-0.log", "worker-0.2.log", None):
        trial = study.ask()
        trial.set_user_attr("worker", 0)
        if log is not None:
            trial.set_user_attr("log", log)
        study.tell(trial, 0.5)
    names = WorkerNames(study.trials)
    assert [names(t) for t in study.trials] == ["w0", "w0 (worker-0.2.log)", "w0"]
