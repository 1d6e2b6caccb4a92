"""A retried trial is a new attempt: the same params, none of the failed attempt's records."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState
from trainer.retries import RetryAsNewAttempt, retry_of
from trainer.stopping import StopRequest

from tests.trial_loops import make_loop, reserve


def _crash(trial: optuna.Trial) -> list[float]:
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    raise RuntimeError("diverged")


def test_a_retry_keeps_the_params_but_not_why_the_attempt_before_it_failed(
    tmp_path: Path,
) -> None:
    loop, study = make_loop(tmp_path, _crash, StopRequest(), max_retry=1)
    loop.run_one(reserve(loop))
    failed, retry = study.get_trials()
    assert "RuntimeError: diverged" in failed.user_attrs["fail_reason"]
    assert retry.state is TrialState.WAITING
    assert retry.params == failed.params
    # Had it been kept, a retry failed unseen (a stale heartbeat) would show this reason.
    assert "fail_reason" not in retry.user_attrs
    assert retry_of(retry.system_attrs) == failed.number


def test_a_retry_of_a_retry_names_the_attempt_it_follows_and_the_limit_holds() -> None:
    study = optuna.create_study()
    retry = RetryAsNewAttempt(max_retry=2)
    for expected_before in (0, 1):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        trial.set_user_attr("wandb_run_id", f"run-of-{trial.number}")
        study.tell(trial, state=TrialState.FAIL)
        retry(study, study.trials[-1])
        assert retry_of(study.trials[-1].system_attrs) == expected_before
        assert study.trials[-1].user_attrs == {}
    third = study.ask()  # the WAITING retry comes first
    assert third.number == 2
    study.tell(third, state=TrialState.FAIL)
    retry(study, study.trials[-1])  # a third retry: beyond max_retry 2
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3
    assert retry_of({}) is None
