"""What counts as an error line in a container's log (pure: the services' logs are text to classify).

The Developer Mesh services log JSON (contract: LOG_FORMAT=json), so `"level":"error"` is the main form;
Prometheus and other Go tools log logfmt (`level=error`); Python and Redis write the word. The runbook's
`docker-compose logs --tail=100` leaves that reading to the on-call engineer at 3 a.m.
"""
from __future__ import annotations

import re

# Level names are matched whatever their case in structured forms, but a bare word only in capitals:
# "error" inside a message ("0 errors", "error_rate") is not an error line.
_BARE_WORD = re.compile(r"\b(ERROR|FATAL|PANIC|CRITICAL|Traceback)\b")
_STRUCTURED = re.compile(r'"level"\s*:\s*"(error|fatal|panic|critical)"|\blevel=(error|fatal|panic|crit)\b',
                         re.IGNORECASE)


def is_error_line(line: str) -> bool:
    return bool(_STRUCTURED.search(line) or _BARE_WORD.search(line))


def error_lines(text: str) -> list[str]:
    """The lines of a log that are errors, in order."""
    return [line for line in text.splitlines() if is_error_line(line)]
