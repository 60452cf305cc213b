"""Deployment Procedures > Image Verification: what runs is what the registry serves, labelled as the real
Dockerfiles label it. Signature, vulnerability scan and SBOM checks need tools that may not be installed:
then they are warnings that say so, never a silent "verified"."""
from __future__ import annotations

import pytest

from runbook import images
from runbook.findings import warn

pytestmark = pytest.mark.security


def test_running_image_verified(mesh, target, service):
    """Labels present, version label matches the tag, the running digest is the registry's (no drift)."""
    container = target.services[service].container
    state = next((s for s in mesh.compose.services() if s.container == container), None)
    assert state is not None, f"{service}: no container {container!r} in project {target.compose.project}"
    report = images.verify(mesh.compose.docker, state.image, mesh.timeout, running_image_id=state.image_id)
    mesh.evidence.json(f"{state.image}", report.facts)
    for message in report.warnings:
        warn(mesh.evidence, message)
    assert not report.problems, "; ".join(report.problems) + (
        ". Next step: redeploy the tag from the registry (pytest procedures -m deploy) and find who pushed over it")
