"""Warn-level findings: shown in the console summary and on the report row, never failing the run
(unless the run says -W error::RunbookWarning, for strict gates)."""
from __future__ import annotations

import warnings

from .evidence import Evidence
from .types import RunbookWarning


def warn(evidence: Evidence, message: str) -> None:
    evidence.warning(message)
    warnings.warn(RunbookWarning(message), stacklevel=2)
