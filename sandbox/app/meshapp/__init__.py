"""Stand-in Developer Mesh services (rest-api, edge-mcp, worker) for the mesh-runbook sandbox.

Stdlib + psycopg + redis + prometheus_client only, so they run on Debian bookworm's packages.
"""
