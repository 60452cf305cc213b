"""Judging a health endpoint's answer, per the real contract (developer-mesh-contract.md section 2)."""
from __future__ import annotations

from .probes.http import HttpObservation


def judge(service: str, obs: HttpObservation, next_step: str) -> tuple[str, str]:
    """Return (verdict, message): verdict is pass, warn or fail.

    The status is compared exactly: the runbook's `jq -r .status | grep -q healthy` also matches
    "unhealthy", so a sick service passes its check."""
    if not obs.answered:
        return "fail", f"{service} health: no answer from {obs.url} ({obs.error}). Next step: {next_step}"
    body = obs.body if isinstance(obs.body, dict) else {}
    status = body.get("status")
    bad = _bad_components(body)
    detail = f" unhealthy components: {', '.join(bad)}." if bad else ""
    if obs.status == 200 and status == "healthy":
        return "pass", f"{service} healthy (HTTP 200 in {obs.elapsed_ms:.0f} ms)"
    if obs.status == 200 and status == "degraded":
        return "warn", f"{service} health: status 'degraded' (HTTP 200).{detail} Next step: {next_step}"
    return "fail", (f"{service} health: measured status {status!r} with HTTP {obs.status}, expected 'healthy' "
                    f"with HTTP 200.{detail} Next step: {next_step}")


def _bad_components(body: dict) -> list[str]:
    out = []
    for name, value in (body.get("components") or {}).items():
        state = value.get("status") if isinstance(value, dict) else value
        if isinstance(state, str) and not state.startswith("healthy"):
            msg = value.get("message", "") if isinstance(value, dict) else ""
            out.append(f"{name}={state}{' (' + msg + ')' if msg else ''}")
    return out
