"""Where the suite keeps what outlives a run: the deployment history, the procedure locks."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def state_dir() -> Path:
    """`$MESH_STATE_DIR`, else `<repo>/state`; read at each call so a test (or a caller) can move it.

    An empty MESH_STATE_DIR counts as unset: Path("") would silently mean the current directory."""
    return Path(os.environ.get("MESH_STATE_DIR") or REPO / "state")
