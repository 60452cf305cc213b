"""What a check saw, kept as plain data: HTTP exchanges, query results as tables, measured numbers, notes.
The reports (HTML rows, the JSON Lines evidence file) are made from these records after redaction."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .probes.http import HttpObservation
from .probes.postgres import QueryResult

MAX_ROWS = 50  # a table in a report row; the rest is counted, not shown


@dataclass
class Record:
    kind: str      # http | table | text | measure | warning | json
    title: str
    data: Any

    def as_dict(self) -> dict:
        return {"kind": self.kind, "title": self.title, "data": self.data}


@dataclass
class Evidence:
    records: list[Record] = field(default_factory=list)

    def http(self, obs: HttpObservation, title: str = "") -> HttpObservation:
        self.records.append(Record("http", title or f"{obs.method} {obs.url}", {
            "method": obs.method, "url": obs.url, "status": obs.status, "elapsed_ms": round(obs.elapsed_ms, 1),
            "error": obs.error, "body": _jsonable(obs.body)}))
        return obs

    def query(self, result: QueryResult, title: str = "") -> QueryResult:
        self.table(title or "query", result.columns, result.rows, sql=result.sql, elapsed_ms=result.elapsed_ms)
        return result

    def table(self, title: str, columns: list[str], rows: list, **extra) -> None:
        shown = [[_jsonable(v) for v in row] for row in rows[:MAX_ROWS]]
        self.records.append(Record("table", title, {"columns": list(columns), "rows": shown,
                                                    "total_rows": len(rows), **_jsonable(extra)}))

    def text(self, title: str, text: str) -> None:
        self.records.append(Record("text", title, text[-20000:]))

    def json(self, title: str, data: Any) -> None:
        self.records.append(Record("json", title, _jsonable(data)))

    def measure(self, name: str, value: Any, unit: str = "", threshold: Any = None, verdict: str = "") -> None:
        """A figure for the report. The verdict written here decides nothing: a procedure's figure that must
        meet its target goes through Context.judge (runbook/procedure.py), which writes it here and fails the
        run when it misses."""
        self.records.append(Record("measure", name, {"value": _jsonable(value), "unit": unit,
                                                     "threshold": _jsonable(threshold), "verdict": verdict}))

    def image(self, title: str, png: bytes) -> None:
        """A picture (a capacity chart): kept as a data URI, so the self-contained HTML report carries it."""
        import base64
        self.records.append(Record("image", title, "data:image/png;base64," + base64.b64encode(png).decode()))

    def warning(self, message: str) -> None:
        self.records.append(Record("warning", "warning", message))

    def as_list(self) -> list[dict]:
        return [r.as_dict() for r in self.records]


def _jsonable(value: Any) -> Any:
    """Make a value JSON-safe (datetimes, Decimals, UUIDs, bytes become strings)."""
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)
