"""Hydra config tree of the trainer; a package so Hydra can find it with ``pkg://trainer.conf``."""
