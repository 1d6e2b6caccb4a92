"""The ``hpo`` command: thin adapters that parse options, call the library and render results.

Commands call the library through ``console.guard``, which turns an ``HpoError`` into
``error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from trainer import experiment
from trainer.storage import quiet_optuna

from orchestrator import __version__
from orchestrator.commands import db, image, studies, tracking, workers
from orchestrator.commands._paths import path_option
from orchestrator.commands.dashboard import dashboard
from orchestrator.commands.launch import launch
from orchestrator.commands.report import report
from orchestrator.commands.retrain import retrain
from orchestrator.console import guard, stdout
from orchestrator.errors import ConfigError

EPILOG = (
    "Exit codes: 0 success; 1 the run finished but some workers or trials failed; "
    "2 bad input or an hpo error (the message says which); Ctrl-C stops the workers, then 1."
)

app = typer.Typer(
    name="hpo",
    help="Parallel hyper-parameter optimisation: one container per worker, one study in Postgres.",
    epilog=EPILOG,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)
app.add_typer(image.app, name="image")
app.add_typer(db.app, name="db")
app.command()(launch)
for command in (
    studies.studies,
    studies.status,
    studies.best,
    studies.delete,
    workers.logs,
    workers.stop,
    workers.gc,
    dashboard,
    tracking.wandb,
    tracking.sync,
    report,
    retrain,
):
    app.command()(command)


def _reflow_help(typer_app: typer.Typer) -> None:
    """Join the lines of each paragraph of every command's docstring.

    Typer's rich mode keeps a docstring's single line breaks after its first paragraph, so `--help`
    wrapped raggedly wherever the terminal is narrower than the source lines.
    """
    for info in typer_app.registered_commands:
        doc = info.help or (info.callback.__doc__ if info.callback else None)
        if doc:
            paragraphs = inspect.cleandoc(doc).split("\n\n")
            info.help = "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance)


ConfigDirOption = Annotated[
    Path | None,
    path_option(
        help="Your own Hydra config folder (experiment/, model/, search_space/...), "
        "searched after hpo's.",
        show_default=False,
    ),
]


@app.command()
def experiments(config_dir: ConfigDirOption = None) -> None:
    """List the experiments found in the config tree (trainer/conf/experiment)."""
    for name in guard(experiment.list_experiments, config_dir):
        stdout.print(name)


@app.command("config")
def show_config(
    name: Annotated[str, typer.Argument(help="Experiment to compose, e.g. digits_mlp.")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="Hydra overrides, e.g. model.hidden_dim=256 model/optimizer=sgd."),
    ] = None,
    resolve: Annotated[
        bool, typer.Option(help="Resolve interpolations such as ${trainer.max_epochs}.")
    ] = False,
    config_dir: ConfigDirOption = None,
) -> None:
    """Print the composed config of an experiment, exactly as a trial would receive it."""
    cfg = guard(experiment.compose, name, overrides or [], config_dir)
    yaml = guard(_to_yaml, cfg, resolve=resolve)
    stdout.print(yaml, end="", markup=False, highlight=False, soft_wrap=True)


def _to_yaml(cfg: DictConfig, *, resolve: bool) -> str:
    """The config as YAML; an interpolation that resolves only inside a run is a ConfigError."""
    try:
        return OmegaConf.to_yaml(cfg, resolve=resolve)
    except OmegaConfBaseException as e:
        where = f"`{e.full_key}`: " if e.full_key else ""
        raise ConfigError(f"{where}{str(e.msg).splitlines()[0]} (drop --resolve)") from None


@app.command()
def version() -> None:
    """Print hpo's version."""
    stdout.print(__version__)


_reflow_help(app)


def main() -> None:
    """Console-script entry point."""
    quiet_optuna()
    app()
