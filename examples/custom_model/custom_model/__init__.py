"""A user's own model for hpo: nothing here imports hpo's model code."""

from __future__ import annotations

from custom_model.cnn import DigitsCNN

__all__ = ["DigitsCNN"]
