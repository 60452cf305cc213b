"""No secret reaches the console, the HTML report, the JUnit XML or the evidence file: canary secrets are
put where a real run keeps its credentials (the environment variables the target names, a password inside
a URL), the run is made to fail on them (wrong passwords, a refused API key), and every output is searched."""
from __future__ import annotations

import base64
import re

from harness import REPO, SANDBOX_TOML, run_suite
from sandbox import config

CANARIES = {
    "MESH_PG_PASSWORD": "canaryPg4f7Q2xZ9",
    "MESH_REDIS_PASSWORD": "canaryRedis8K3mW1",
    "MESH_API_KEY": "canaryApiKey5T9vB2nL",
    "MESH_S3_ACCESS_KEY": "canaryS3Access6R2p",
    "MESH_S3_SECRET_KEY": "canaryS3Secret3J8y",
}
URL_PASSWORD = "canaryInUrl7H4s"


def _outputs(run) -> dict[str, str]:
    found = {"console": run.output}
    # the report's summary and the reports directory's index are outputs too (fixtures/reports.py)
    for path in (run.html, run.xml, run.evidence, run.html.with_suffix(".summary.json"), run.html.parent / "index.html"):
        assert path.exists(), f"{path} was not written"
        found[path.name] = path.read_text(errors="replace")
    return found


def _leaks(run, secrets) -> list[str]:
    forms = set()
    for secret in secrets:  # as it is, and base64-encoded (a token inside a config blob)
        forms |= {secret, base64.b64encode(secret.encode()).decode()}
    forms.add(base64.b64encode(f"mesh:{URL_PASSWORD}".encode()).decode())  # basic auth as sent
    return [f"{name}: {form!r}" for name, text in _outputs(run).items() for form in forms if form in text]


def _canary_target(tmp_path):
    """The sandbox target with credentials inside two URLs (Redis and Prometheus)."""
    text = SANDBOX_TOML.read_text().replace('"../sandbox/', f'"{REPO}/sandbox/')
    text, n = re.subn(r'url = "redis://', f'url = "redis://:{URL_PASSWORD}@', text)
    assert n == 1
    text, n = re.subn(r'(\[prometheus\]\nurl = ")http://', rf'\1http://mesh:{URL_PASSWORD}@', text)
    assert n == 1
    path = tmp_path / "canary.toml"
    path.write_text(text)
    return path


def test_canary_secrets_never_reach_any_output(sandbox, tmp_path):
    run = run_suite(["checks", "-m", "daily or health or post_deploy or database or monitoring"], tmp_path, target=_canary_target(tmp_path), env=CANARIES, timeout=300)
    assert run.rc == 1, run.output[-3000:]
    failed = [name for name, (outcome, _) in run.results.items() if outcome == "failed"]
    # the canaries were really used: PostgreSQL refused the password, the API refused the key
    assert any("api_key" in n for n in failed) and any("smoke" in n for n in failed), failed
    assert "refused user 'mcp_user'" in run.failed("test_6_api_key_expirations")  # said as a refusal,
    assert "refused PING" in run.failed("test_3_redis_connection")                  # not as a dead server
    assert not _leaks(run, [*CANARIES.values(), URL_PASSWORD])


def test_a_procedure_plan_and_a_real_run_show_no_real_secret(sandbox, tmp_path):
    real = config.load_secrets()
    plan = run_suite(["procedures", "-m", "backup", "--plan"], tmp_path)
    assert plan.rc == 0, plan.output[-3000:]
    daily = run_suite(["checks", "-m", "daily or post_deploy", "--expect-version", "v1.0.0"], tmp_path)
    assert daily.results, daily.output[-3000:]
    secrets = [v for v in real.values() if len(v) >= 8]
    assert secrets, "the sandbox has no secrets to look for"
    assert not _leaks(plan, secrets) and not _leaks(daily, secrets)
