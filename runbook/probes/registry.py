"""Docker Registry HTTP API v2: does a tag exist, and which digest does the registry serve for it."""
from __future__ import annotations

import requests

ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


def manifest_digest(registry: str, repository: str, tag: str, timeout: float) -> str | None:
    """The digest the registry serves for repository:tag, or None when the tag does not exist.
    Local registries (127.0.0.1, localhost) are plain HTTP; others HTTPS."""
    scheme = "http" if registry.split(":")[0] in ("127.0.0.1", "localhost") else "https"
    resp = requests.head(f"{scheme}://{registry}/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT},
                         timeout=(timeout, timeout))
    if resp.status_code == 404:
        return None
    resp.raise_for_status()
    return resp.headers.get("Docker-Content-Digest")


def split_image(ref: str) -> tuple[str, str, str]:
    """'127.0.0.1:5000/developer-mesh-rest-api:v1.0.0' -> (registry, repository, tag)."""
    name, _, tag = ref.rpartition(":")
    if "/" in tag or not name:  # no tag: 'host:5000/repo'
        name, tag = ref, "latest"
    registry, _, repository = name.partition("/")
    return registry, repository, tag
