"""\"Notify the security team\": the runbook's step names nobody and calls nothing. Here it is a webhook the
target may configure ([incident] webhook_url_env: the URL is a secret, since chat webhooks carry their token
in the path). The message says what happened and where the evidence is, never the evidence itself nor any
key. Without a webhook the procedure says that it notified nobody."""
from __future__ import annotations

from ..probes import http as http_probe


def webhook_url(target) -> tuple[str | None, str]:
    """(url or None, why none)."""
    env = target.incident.webhook_url_env
    if not env:
        return None, "the target configures no security webhook ([incident] webhook_url_env)"
    url = target.secret(env)
    if not url:
        return None, f"${env} is not set (the target's security webhook)"
    return url, ""


def send(target, payload: dict, timeout: float, redactor) -> str:
    """POST the payload (redacted) as JSON; returns what was done, raises RuntimeError when not delivered."""
    url, why = webhook_url(target)
    if url is None:
        return f"notified nobody: {why}"
    obs = http_probe.post_json(url, redactor.value(payload), timeout)
    where = f"the security webhook (${target.incident.webhook_url_env})"
    if obs.error or obs.status is None or not 200 <= obs.status < 300:
        raise RuntimeError(f"{where} did not take the notification: "
                           f"{obs.error or f'HTTP {obs.status}'} after {obs.elapsed_ms:.0f} ms")
    return f"notified {where}: HTTP {obs.status} in {obs.elapsed_ms:.0f} ms"
