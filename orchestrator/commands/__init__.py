"""Sub-commands of ``hpo``, one Typer app per module, mounted by ``orchestrator.cli``."""
