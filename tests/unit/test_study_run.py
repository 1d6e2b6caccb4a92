"""The study run: one W&B run of job_type `study` with the trials' table, charts and front."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from trainer import wandb_runs
from trainer.wandb_runs import run_id

from orchestrator import study_run
from orchestrator.errors import BackendError
from orchestrator.study_run import log_study_run, trial_columns, trial_rows
from tests.fronts import VALUES, tell_values, two_objective_spec
from tests.specs import digits_spec
from tests.wandb_records import read_runs
from tests.wandb_server import WandbStandIn


def _three_trials() -> optuna.Study:
    study = optuna.create_study(study_name="so", direction="maximize")
    study.optimize(lambda t: t.suggest_float("lr", 0, 1), 3)
    return study


def test_trial_rows_follow_the_columns() -> None:
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    failed = study.ask()
    failed.set_user_attr("fail_reason", "RuntimeError: diverged")
    study.tell(failed, state=TrialState.FAIL)
    rows = trial_rows(study.get_trials())
    assert [row[0] for row in rows] == [0, 1, 2]
    assert rows[0][1] == "COMPLETE" and json.loads(rows[0][2]) == study.trials[0].params
    columns = trial_columns(("val_acc",))
    assert all(len(row) == len(columns) for row in rows)
    notes = [dict(zip(columns, row, strict=True))["note"] for row in rows]
    assert notes == ["", "", "RuntimeError: diverged"]


def test_a_multi_objective_study_run_has_a_column_per_metric_and_its_front(tmp_path: Path) -> None:
    spec = two_objective_spec()
    study = optuna.create_study(study_name="mo", directions=["maximize", "minimize"])
    tell_values(study)
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    log_study_run(study, spec, tmp_path)

    (run,) = read_runs(tmp_path / "mo" / "wandb")
    assert run.summary["pareto_front"] == [0, 1]
    columns = trial_columns(spec.objective.metrics)
    assert columns[3:5] == ["val_acc", "val_loss"]
    rows = trial_rows(study.get_trials(), objectives=2)
    assert [row[3:5] for row in rows] == [*VALUES, [None, None]]


def test_a_study_runs_charts_name_the_metric(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="so", direction="maximize")
    study.optimize(lambda t: t.suggest_float("lr", 0, 1) + t.suggest_int("depth", 1, 3), 3)
    log_study_run(study, digits_spec(), tmp_path)

    (run,) = read_runs(tmp_path / "so" / "wandb")
    titles = {
        key.removeprefix("_wandb/visualize/"): value["panel_config"]["stringSettings"]["title"]
        for key, value in run.config.items()
        if key.startswith("_wandb/visualize/")
    }
    assert titles == {"history": "best val_acc", "importance": "importance for val_acc"}


@pytest.mark.slow
def test_a_study_run_w_and_b_will_not_take_is_one_error_naming_where_it_is_kept(
    wandb_online: WandbStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(wandb_runs, "ONLINE_FINISH_TIMEOUT_S", 2.0)
    started = study_run.init_run

    def rate_limited_at_finish(*args: Any) -> Any:
        run, is_online = started(*args)
        finish = run.finish

        def finish_rate_limited(*args: Any, **kwargs: Any) -> Any:
            wandb_online.limit_next = 10**9  # from now on, every post gets 429
            return finish(*args, **kwargs)

        run.finish = finish_rate_limited
        return run, is_online

    monkeypatch.setattr(study_run, "init_run", rate_limited_at_finish)
    with pytest.raises(BackendError, match=r"W&B did not take the study run's data within 2 s"):
        log_study_run(_three_trials(), digits_spec(), tmp_path)
    assert run_id("so", "study") in wandb_online.runs  # it was online, then W&B stopped taking data


@pytest.mark.slow
def test_a_study_run_w_and_b_refuses_is_one_error_and_the_run_is_finished(
    wandb_online: WandbStandIn, tmp_path: Path
) -> None:
    wandb_online.known_key = False  # the run starts; its tables' upload asks whose key it is
    with pytest.raises(BackendError, match=r"^W&B refused the study run: .*credentials"):
        log_study_run(_three_trials(), digits_spec(), tmp_path)
    assert wandb_online.runs[run_id("so", "study")].exit_code == 1
