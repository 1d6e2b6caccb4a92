"""The study core without services: spec, budget verdicts, worker states, CLI validation, view."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Sequence
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console
from trainer.budget import BudgetGate, Counts, Verdict
from trainer.errors import ConfigError
from trainer.spec import Budget, ExperimentSpec, Resilience
from trainer.worker import LOG_FORMAT
from typer.testing import CliRunner

from orchestrator.backends import WorkerState, exit_with_last_line, state_from_exit
from orchestrator.cli import app
from orchestrator.progress import Snapshot, live_view, render, take_snapshot
from orchestrator.reading import HEARTBEAT_LOST, running_note
from orchestrator.study import RESUMABLE_CHANGES, build_spec
from orchestrator.summary import print_summary
from tests.fronts import tell_values


def _spec(
    overrides: Sequence[str] = ("trainer.max_epochs=5",), **changes: object
) -> ExperimentSpec:
    fields: dict[str, object] = {
        "budget": Budget(12),
        "sampler": "tpe",
        "pruner": "median",
        "seed": 1,
        "resilience": Resilience(),
    }
    fields.update(changes)
    return build_spec("digits_mlp", overrides, **fields)  # type: ignore[arg-type]


def test_a_searched_key_is_fixed_by_leaving_it_out_of_the_search() -> None:
    spec = _spec(["model.depth=2", "~search_space.depth"])
    assert "depth" not in spec.search_space
    assert spec.config["model"]["depth"] == 2


def test_spec_round_trips_through_json() -> None:
    spec = _spec()
    assert ExperimentSpec.from_json(spec.to_json()) == spec
    assert spec.objective.metrics == ("val_acc",)
    assert spec.objective.directions == ("maximize",)
    assert spec.config["trainer"]["max_epochs"] == 5


def test_spec_differences_name_each_changed_field() -> None:
    base, other = _spec(), _spec(sampler="random", budget=Budget(16))
    assert base.differences(other, ignore=("budget",)) == ["sampler: 'tpe' -> 'random'"]
    assert "budget.trials: 12 -> 16" in base.differences(other)


def test_a_resume_may_change_how_long_an_outage_is_ridden_out_not_the_grace() -> None:
    base = _spec()
    patient = _spec(resilience=Resilience(db_outage_s=900, max_failed=20))
    assert base.differences(patient, ignore=RESUMABLE_CHANGES) == []
    strict = _spec(resilience=Resilience(grace_s=60))
    assert base.differences(strict, ignore=RESUMABLE_CHANGES) == ["resilience.grace_s: 30 -> 60"]


def test_a_spec_stored_before_db_outage_existed_reads_with_its_default() -> None:
    stored = json.loads(_spec().to_json())
    del stored["resilience"]["db_outage_s"]
    assert ExperimentSpec.from_json(json.dumps(stored)).resilience.db_outage_s == 300


def test_unreadable_spec_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a spec"):
        ExperimentSpec.from_json('{"experiment": "x"}')


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Budget(0), "`--trials` must be >= 1"),
        (lambda: Budget(5, timeout_s=0), "`--timeout` must be > 0"),
        (lambda: Resilience(heartbeat_s=10, grace_s=5), "`--grace` must be >= 2 x `--heartbeat`"),
        (lambda: Resilience(max_retry=-1), "`--max-retry` must be >= 0"),
        (lambda: Resilience(max_failed=-1), "`--max-failed` must be >= 0"),
        (lambda: Resilience(db_outage_s=0), "`--db-outage` must be >= 1 second"),
        (lambda: _spec(sampler="grid"), "`--sampler` must be one of"),
    ],
)
def test_bad_settings_say_the_rule(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        make()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("counts", "verdict"),
    [
        (Counts(), None),
        (Counts(complete=9), None),
        (Counts(complete=6, pruned=4), Verdict.DONE),
        (Counts(complete=8, running=2), Verdict.WAIT),
        (Counts(complete=8, running=1, waiting=3), None),
        (Counts(complete=1, failed=4), Verdict.TOO_MANY_FAILURES),
        (Counts(complete=10, failed=4), Verdict.DONE),
    ],
)
def test_budget_verdicts(counts: Counts, verdict: Verdict | None) -> None:
    gate = BudgetGate(engine=None, study_id=1, budget=10, max_failed=3, deadline=None)  # type: ignore[arg-type]
    assert gate._verdict(counts) == verdict


def test_deadline_stops_new_trials() -> None:
    gate = BudgetGate(engine=None, study_id=1, budget=10, max_failed=3, deadline=0.0)  # type: ignore[arg-type]
    assert gate._verdict(Counts()) is Verdict.TIMED_OUT


@pytest.mark.parametrize(
    ("code", "stopped", "state"),
    [
        (None, False, WorkerState.RUNNING),
        (None, True, WorkerState.RUNNING),
        (0, False, WorkerState.SUCCEEDED),
        (1, False, WorkerState.FAILED),
        (-9, False, WorkerState.FAILED),
        (0, True, WorkerState.STOPPED),
        (-15, True, WorkerState.STOPPED),
    ],
)
def test_state_from_exit(code: int | None, stopped: bool, state: WorkerState) -> None:
    assert state_from_exit(code, stopped) is state


TRACEBACK = "Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named 'x'\n"


@pytest.mark.parametrize(
    ("code", "output", "reason"),
    [
        (1, TRACEBACK, "exit 1: ModuleNotFoundError: No module named 'x'"),
        (
            127,
            "[FATAL tini (7)] exec python failed\n\n",
            "exit 127: [FATAL tini (7)] exec python failed",
        ),
        (1, "", "exit 1"),
        (137, TRACEBACK, "exit 137"),  # killed: its last line says nothing of why
        (2, "x" * 500, "exit 2: " + "x" * 157 + "..."),
    ],
)
def test_an_exit_reason_carries_the_workers_last_line(code: int, output: str, reason: str) -> None:
    assert exit_with_last_line(code, output) == reason


def test_an_exit_reason_leaves_out_the_workers_log_prefix() -> None:
    formatter = logging.Formatter(LOG_FORMAT.format(worker_id=3))
    record = logging.LogRecord(
        "trainer.worker", logging.ERROR, "", 0, "study s not found", (), None
    )
    assert exit_with_last_line(2, formatter.format(record) + "\n") == "exit 2: study s not found"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "Invalid value for '--workers'"),
        (["--workers", "10000"], "`--workers` 10000 is more than 4 x cores"),
        (["--study", ""], "`--study` must be 1-100 ASCII letters"),
        (["--study", "../etc"], "`--study` must be 1-100 ASCII letters"),
        (["--study", "a" * 101], "`--study` must be 1-100 ASCII letters"),
        (["--study", "stud\u0443"], "`--study` must be 1-100 ASCII letters"),
        (["--trials", "0"], "Invalid value for '--trials'"),
        (["--max-failed", "-1"], "Invalid value for '--max-failed'"),
        (["--heartbeat", "10", "--grace", "5"], "`--grace` must be >= 2 x `--heartbeat`"),
        (["--sampler", "grid"], "Invalid value for '--sampler'"),
        (["--seed", "-1"], "Invalid value for '--seed'"),
        (["--image", ""], "`--image` names no image; leave it out for hpo-trainer:latest."),
        (
            ["--memory-per-worker", ""],
            "`--memory-per-worker` must be >= 6m (Docker's minimum), got ''",
        ),
        (["--experiment", "nope"], "unknown experiment `nope`"),
        (["model.nope=1"], "unknown config key `model.nope`"),
        (["search_space.lr.low=1.0"], "`search_space.lr.low` must be below"),
        (["search_space.depth.type=float3"], "`search_space.depth.type` must be one of"),
        (["model.depth=2"], "`model.depth=2` would have no effect: every trial samples"),
        (["model/optimizer=sgd"], "leave it out of the search: `~search_space.optimizer`"),
        (["--runs-dir", "/dev/null/runs"], "cannot write in `/dev/null/runs/"),
        (["--wandb-project", "team/project"], "`--wandb-project` 'team/project' is not a W&B"),
        (["--backend", "local", "--detach"], "`--detach` needs the docker backend"),
        (["--backend", "local", "--image", "mine:1"], "`--image` needs the docker backend"),
        (["--backend", "local", "--memory-per-worker", "4g"], "`--memory-per-worker` needs"),
    ],
)
def test_bad_launch_input_exits_2_before_any_side_effect(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unreachable engine and storage prove nothing was contacted: the error comes first.
    # (Not 127.0.0.1: docker workers could not reach it, itself an error, and an early one.)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("HPO_STORAGE", "postgresql+psycopg://hpo:x@hpo-db.invalid:9/hpo")
    result = CliRunner().invoke(app, ["launch", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_live_view_renders_counts_best_and_workers() -> None:
    study = optuna.create_study(direction="maximize")
    for value in (0.5, 0.9):
        trial = study.ask()
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.set_user_attr("worker", 0)
        study.tell(trial, value)
    running = study.ask()
    running.set_user_attr("worker", 1)
    running.report(0.3, step=4)
    snapshot = take_snapshot(study, 10, {0: WorkerState.SUCCEEDED, 1: WorkerState.RUNNING}, 0.0, 0)
    assert snapshot.counts == Counts(complete=2, running=1)
    assert snapshot.best is not None
    assert snapshot.best.value == 0.9
    assert snapshot.running == {1: (2, 4)}
    console = Console(record=True, width=120)
    console.print(render(snapshot))
    text = console.export_text()
    assert "2/10 trials" in text
    assert "best 0.9000" in text
    assert "w1" in text


def test_the_summary_says_why_the_latest_trial_failed(capsys: pytest.CaptureFixture[str]) -> None:
    study = optuna.create_study()
    for reason in ("worker w0 died: exit 137", "`trainer`: `max_epochs` must be >= -1"):
        trial = study.ask()
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)
    study.tell(study.ask(), state=TrialState.FAIL)  # failed by a peer: no reason recorded
    snapshot = take_snapshot(study, 4, {0: WorkerState.SUCCEEDED}, 0.0, 0)
    assert snapshot.last_failure == (2, HEARTBEAT_LOST)
    trial = study.ask()
    trial.set_user_attr("fail_reason", "`trainer`: `max_epochs` must be >= -1")
    study.tell(trial, state=TrialState.FAIL)
    assert print_summary(take_snapshot(study, 4, {}, 0.0, 0), [], max_failed=2) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "more than --max-failed 2" in out
    assert "last failure: trial 3: `trainer`: `max_epochs` must be >= -1" in out


def test_the_summary_of_a_multi_objective_study_points_to_its_front(
    capsys: pytest.CaptureFixture[str],
) -> None:
    study = optuna.create_study(study_name="mo", directions=["maximize", "minimize"])
    tell_values(study)
    assert print_summary(take_snapshot(study, 3, {}, 0.0, 0), [], max_failed=2) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Pareto front: 2 trials (`hpo best mo` lists them)" in out


def test_unreachable_storage_names_host_and_port_never_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HPO_STORAGE", "postgresql+psycopg://hpo:canary-7f3a@127.0.0.1:9/hpo")
    result = CliRunner().invoke(app, ["launch", "--backend", "local", "--trials", "2"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("error: cannot use the study database at 127.0.0.1:9/hpo")
    assert "canary-7f3a" not in result.output


def _snapshot(done: int, workers: dict[int, WorkerState], **more: Any) -> Snapshot:
    counts = Counts(complete=done, running=sum(s is WorkerState.RUNNING for s in workers.values()))
    return Snapshot("s", 4, counts, None, 0, {}, workers, elapsed_s=65.0, **more)


@pytest.mark.parametrize("interrupted", [False, True])
def test_in_a_log_each_change_is_one_line_and_the_last_table_ends_it(interrupted: bool) -> None:
    # A file is not a terminal: there Rich's Live would print its last frame only, at the end.
    out = io.StringIO()
    console = Console(file=out, width=100)
    both = {0: WorkerState.RUNNING, 1: WorkerState.RUNNING}
    expected = pytest.raises(KeyboardInterrupt) if interrupted else contextlib.nullcontext()
    with expected, live_view(console) as show:
        show(_snapshot(0, both))
        show(_snapshot(0, both))  # nothing new: no line
        show(_snapshot(1, both))
        oom = {1: "exit 137 (OOMKilled)"}
        show(_snapshot(1, {**both, 1: WorkerState.FAILED}, failure_reasons=oom))
        if interrupted:
            raise KeyboardInterrupt
    console.print("detached: 1 workers run on")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("s  0/4 trials  0.0/min  elapsed 1:05  left ?  complete 0")
    assert lines[1].startswith("s  1/4 trials")
    assert lines[2] == "s  w1 failed: exit 137 (OOMKilled)"
    assert [line.split() for line in lines[-3:-1]] == [
        ["w0", "running", "-", "-"],
        ["w1", "failed", "-", "-", "exit", "137", "(OOMKilled)"],
    ]
    assert lines[-1] == "detached: 1 workers run on"


def test_a_running_trial_says_who_runs_it_and_how_far_it_is() -> None:
    fresh = optuna.trial.create_trial(state=TrialState.RUNNING)
    going = optuna.trial.create_trial(
        state=TrialState.RUNNING, intermediate_values={0: 0.5, 1: 0.7}
    )
    assert running_note(going, "w1") == "on w1, epoch 1"
    assert running_note(fresh, "w0") == "on w0, no epoch reported yet"
    assert running_note(fresh, "") == "not claimed by a worker, no epoch reported yet"
