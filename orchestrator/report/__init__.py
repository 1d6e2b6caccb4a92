"""``hpo report``: a study as one self-contained HTML page and PNG copies of its figures.

Read from the database and the run folder alone, so a report can be made again at any time,
on any host that reaches both.
"""

from __future__ import annotations

from orchestrator.report._build import write_report

__all__ = ["write_report"]
