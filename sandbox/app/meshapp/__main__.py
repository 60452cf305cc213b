"""`python3 -m meshapp rest-api|edge-mcp|worker` (else $MESH_SERVICE): one image per service, one entry point."""
import os
import sys

SERVICES = {"rest-api": "rest_api", "edge-mcp": "edge_mcp", "worker": "worker"}


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MESH_SERVICE", "")
    if name not in SERVICES:
        sys.stderr.write("usage: python3 -m meshapp {%s}\n" % "|".join(SERVICES))
        sys.exit(2)
    os.environ["MESH_SERVICE"] = name
    mod = __import__("meshapp." + SERVICES[name], fromlist=["main"])
    mod.main()


if __name__ == "__main__":
    main()
