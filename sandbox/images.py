"""Images, built here (nothing can be pulled from outside): a debootstrap base, then the stand-in services
at every version in config.VERSIONS, labelled like the real Dockerfiles and pushed to the local registry."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from . import config, engine, procs

BASE_TAG = "mesh-base:bookworm"
# Everything the containers need comes from Debian: the services' libraries, redis-server, prometheus.
BASE_PACKAGES = ("python3", "python3-psycopg", "python3-redis", "python3-prometheus-client",
                 "redis-server", "prometheus", "ca-certificates", "curl", "procps")
APP = config.REPO / "sandbox" / "app"


def _base_key() -> str:
    return hashlib.sha1(" ".join(("bookworm",) + BASE_PACKAGES).encode()).hexdigest()[:12]


def ensure_base() -> str:
    client = engine.client()
    key = _base_key()
    try:
        if client.images.get(BASE_TAG).labels.get("mesh.base-key") == key:
            return "present"
    except Exception:
        pass
    tarball = config.CACHE / f"base-{key}.tar"
    state = "from cache"
    if not tarball.exists():
        state = "built with debootstrap"
        config.CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=config.CACHE) as tmp:
            rootfs = Path(tmp) / "rootfs"
            procs.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
                       "bookworm", str(rootfs), "http://deb.debian.org/debian"], timeout=900)
            # Smaller image, same behaviour: apt lists and caches are not needed at run time.
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
                shutil.rmtree(rootfs / junk, ignore_errors=True)
            partial = tarball.with_suffix(".partial")
            procs.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], timeout=300)
            partial.replace(tarball)
    with open(tarball, "rb") as data:
        # docker import with a label, through the CLI (the SDK's import cannot set labels).
        subprocess.run(["/usr/bin/docker", "-H", config.DOCKER_HOST, "import", "-c",
                        f"LABEL mesh.base-key={key}", "-", BASE_TAG], stdin=data, check=True,
                       capture_output=True, timeout=300)
    return state


def _source_hash() -> str:
    digest = hashlib.sha1()
    for path in sorted(APP.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(APP)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def image_ref(service: str, version: str) -> str:
    return f"{config.registry()}/developer-mesh-{service}:{version}"


def build(service: str, version: str, source_hash: str | None = None, extra_args: dict | None = None,
          tag: str | None = None) -> tuple[str, bool]:
    """Build one service image at one version; returns (ref, built). Skips when the same source is there."""
    client = engine.client(timeout=300)
    source_hash = source_hash or _source_hash()
    ref = tag or image_ref(service, version)
    try:
        if client.images.get(ref).labels.get("mesh.source-hash") == source_hash and not extra_args:
            return ref, False
    except Exception:
        pass
    args = {"BASE": BASE_TAG, "SERVICE": service, "VERSION": version, "REVISION": source_hash,
            "CREATED": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "SOURCE_HASH": source_hash, **(extra_args or {})}
    client.images.build(path=str(APP), tag=ref, buildargs=args, rm=True, network_mode="host",
                        labels={"mesh.source-hash": source_hash})
    return ref, True


def push(ref: str) -> None:
    client = engine.client(timeout=300)
    repo, _, tag = ref.rpartition(":")
    for line in client.images.push(repo, tag=tag, stream=True, decode=True):
        if "error" in line:
            raise procs.SandboxError(f"push of {ref} failed: {line['error']}")


def ensure_apps() -> str:
    source_hash = _source_hash()
    built = 0
    for version in config.VERSIONS:
        for service in config.SERVICES:
            ref, did = build(service, version, source_hash)
            push(ref)
            built += did
    return f"{built} built, {len(config.VERSIONS) * len(config.SERVICES)} pushed ({source_hash})"
