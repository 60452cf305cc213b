"""docs/targets.md is written from the target model (runbook/target_doc.py): it lists every section, key and
secret variable the loader knows, so a key added to runbook/target.py without regenerating the page fails
here. Regenerate: `python -m runbook.target_doc > docs/targets.md`."""
from __future__ import annotations

from pathlib import Path

from runbook.target import Target, Thresholds
from runbook.target_doc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "targets.md"


def test_the_page_is_what_the_model_says():
    assert DOC.read_text() == render(), "docs/targets.md is stale: python -m runbook.target_doc > docs/targets.md"


def test_every_key_and_secret_is_on_the_page():
    text = render()
    for name in list(Target.model_fields) + list(Thresholds.model_fields):
        assert f"`{name}`" in text or f"[{name}" in text, name
    for key in Target.REQUIRED_SECRETS:
        assert f"| `{key}` | at start-up |" in text, key
    assert "## [services.NAME] (required)" in text and "## [postgres] (optional: without it, its checks skip)" in text
