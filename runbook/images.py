"""Image Verification (the runbook's section of that name), for what can be verified here.

Labels come from the real Dockerfiles (org.opencontainers.image.version/.revision/.created; the runbook's
`.Config.Labels.version` does not exist). Signatures and vulnerability scans need cosign and trivy: when they
are not installed, the finding says so as a warning; nothing is ever reported "verified" that was not done."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from .probes import registry

REQUIRED_LABELS = ("org.opencontainers.image.version", "org.opencontainers.image.revision",
                   "org.opencontainers.image.created")


@dataclass
class ImageReport:
    ref: str
    problems: list[str] = field(default_factory=list)   # failures
    warnings: list[str] = field(default_factory=list)   # not verified, and why
    facts: dict = field(default_factory=dict)


def verify(docker_client, ref: str, timeout: float, running_image_id: str | None = None) -> ImageReport:
    report = ImageReport(ref)
    reg, repo, tag = registry.split_image(ref)
    try:
        served = registry.manifest_digest(reg, repo, tag, timeout)
    except Exception as exc:
        report.problems.append(f"registry {reg} did not answer for {repo}:{tag} within {timeout:g}s: {exc}")
        return report
    if served is None:
        report.problems.append(f"{repo}:{tag} does not exist in registry {reg}")
        return report
    report.facts["registry_digest"] = served
    image = docker_client.images.get(running_image_id or ref)
    labels = image.labels or {}
    report.facts["labels"] = {k: labels.get(k) for k in REQUIRED_LABELS}
    missing = [k for k in REQUIRED_LABELS if not labels.get(k)]
    if missing:
        report.problems.append(f"{ref}: labels missing: {', '.join(missing)}")
    version = labels.get("org.opencontainers.image.version")
    if version and version != tag and tag != "latest":
        report.problems.append(f"{ref}: label org.opencontainers.image.version is {version!r}, the tag says {tag!r}")
    digests = [d.split("@", 1)[1] for d in image.attrs.get("RepoDigests", []) if d.startswith(f"{reg}/{repo}@")]
    report.facts["local_digests"] = digests
    if digests and served not in digests:
        report.problems.append(f"{ref}: drift: the image here is {digests[0][:19]}…, the registry serves "
                               f"{served[:19]}… for {tag}")
    elif not digests:
        report.warnings.append(f"{ref}: the local image has no digest from {reg}: cannot compare with the registry")
    for tool, what in (("cosign", "signature"), ("trivy", "vulnerability scan")):
        if shutil.which(tool) is None:
            report.warnings.append(f"{ref}: {what} NOT verified: {tool} is not installed here")
    if not any(k.startswith("org.opencontainers.image.sbom") or "sbom" in k.lower() for k in labels):
        report.warnings.append(f"{ref}: no SBOM attached to the image (label or attestation): not checked")
    return report


def releases(mesh, target) -> dict[str, str]:
    """Service (and replica) -> the release its running container carries (org.opencontainers.image.version; the runbook's
    `version` label does not exist), for the target's services found in its Compose project. Empty: none
    found, which the caller must say (never "one release")."""
    containers = {i.container: i.name for svc in target.services.values() for i in svc.instances}   # replicas too
    return {containers[s.container]: s.version or f"unlabelled {s.image}"
            for s in mesh.compose.services() if s.container in containers}
