"""Bench: the backup procedure against the raw tools doing the same work, and the parallel restore
against the runbook's serial one, on a database grown to --size-mb (default 1024).

    flock /tmp/mesh-sandbox-tests.lock .venv/bin/python bench/backup_restore.py [--size-mb 1024] [--keep]

The growth happens in a separate database, mcp_bench, on the sandbox primary (the seeded mcp tables stay
as they are), backed up under the S3 prefix bench-backups/ through a copy of the sandbox target that names
them. Both are removed at the end unless --keep. Restores go into a scratch PostgreSQL. The 1 GB run is
slow on 2 cores (growth, two backups, two restores): run it once. Prints a table; nothing is asserted."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from runbook.components import scratch  # noqa: E402
from runbook.deployment import Deployment  # noqa: E402
from runbook.procedure import Context  # noqa: E402
from runbook.procedures import backup  # noqa: E402
from runbook.target import load_target  # noqa: E402
from sandbox import config, postgres  # noqa: E402

DB, PREFIX, BATCH = "mcp_bench", "bench-backups", 20_000


def bench_target(tmp: Path):
    text = (REPO / "targets" / "sandbox.toml").read_text().replace('"../sandbox/', f'"{REPO}/sandbox/')
    text = text.replace('database = "mcp"', f'database = "{DB}"').replace('prefix = "backups"', f'prefix = "{PREFIX}"')
    path = tmp / "sandbox.toml"  # same name: the gate's lock and the audit go by the target name
    path.write_text(text)
    return load_target(str(path), REPO / "targets")


def grow(secrets, size_mb: int) -> int:
    with postgres.connect(secrets) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB}")
        admin.execute(f"CREATE DATABASE {DB} OWNER mcp_user")
    with postgres.connect(secrets, dbname=DB) as conn:
        conn.execute((REPO / "sandbox" / "sql" / "schema.sql").read_text())
        while (size := conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]) < size_mb << 20:
            print(f"  growing {DB}: {size >> 20} MB of {size_mb} MB", flush=True)
            conn.execute(
                "WITH c AS (INSERT INTO mcp.contexts (tenant_id, type, metadata, token_count) "
                " SELECT ('00000000-0000-4000-8000-00000000000' || (1 + g %% 5))::uuid, 'conversation', "
                "        jsonb_build_object('name', 'bench ' || g, 'h', md5(g::text)), g %% 4000 "
                " FROM generate_series(1, %s) g RETURNING id, tenant_id), "
                "i AS (INSERT INTO mcp.context_items (context_id, type, role, content, sequence_number) "
                " SELECT c.id, 'message', 'user', repeat(md5(random()::text), 4 + s * 4), s "
                " FROM c CROSS JOIN generate_series(0, 2) s) "
                "INSERT INTO mcp.embeddings (tenant_id, context_id, content, content_hash, model_id, model_provider, "
                " model_name, model_dimensions, embedding) "
                "SELECT c.tenant_id, c.id, 'bench ' || c.id, md5(c.id::text), "
                " '00000000-0000-4000-9000-000000000001', 'bedrock', 'titan', 128, "
                " ARRAY(SELECT random()::real FROM generate_series(1, 128) WHERE c.id IS NOT NULL) FROM c", (BATCH,))
        conn.execute("VACUUM ANALYZE")
        return size


def timed(fn):
    t0 = time.monotonic()
    out = fn()
    return time.monotonic() - t0, out


def raw_backup(target, secrets) -> float:
    """What the procedure's two dumps amount to with the bare tools: pg_dump -Fc | aws s3 cp -, twice."""
    pg, env = target.postgres, {**os.environ, "PGPASSWORD": secrets["MESH_PG_PASSWORD"],
                                "AWS_ACCESS_KEY_ID": secrets["MESH_S3_ACCESS_KEY"],
                                "AWS_SECRET_ACCESS_KEY": secrets["MESH_S3_SECRET_KEY"], "AWS_DEFAULT_REGION": "us-east-1"}
    t0 = time.monotonic()
    for name, extra in (("postgres.dump", ""), ("embeddings.dump", "-t mcp.embeddings")):
        cmd = (f"set -o pipefail; pg_dump -h {pg.primary.host} -p {pg.primary.port} -U {pg.user} -d {DB} -Fc "
               f"--no-password {extra} | aws --endpoint-url {target.s3.endpoint_url} s3 cp - "
               f"s3://{target.s3.bucket}/{PREFIX}/raw/{name}")
        subprocess.run(["bash", "-c", cmd], env=env, check=True, timeout=3600)
    return time.monotonic() - t0


def restore_times(dump: Path) -> dict[str, float]:
    """The procedures' parallel pg_restore (-j 2) against the runbook's serial one, into a scratch server."""
    out = {}
    with scratch.scratch_postgres(7200) as pg:
        for label, jobs in (("pg_restore -j 2 (procedures)", 2), ("pg_restore serial (runbook)", 1)):
            db = f"r{jobs}"
            pg.create_database(db)
            out[label], _ = timed(lambda: pg.run(["pg_restore", "-d", db, "-j", str(jobs), "--no-owner",
                                                  "--no-privileges", "--exit-on-error", str(dump)], label))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="grow the bench database to this size")
    ap.add_argument("--keep", action="store_true", help="keep the bench database and S3 objects")
    args = ap.parse_args()
    secrets = config.load_secrets()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as tmp:
        target = bench_target(Path(tmp))
        mesh = Deployment(target)
        try:
            t_grow, size = timed(lambda: grow(secrets, args.size_mb))
            rows += [("database size", f"{size / 2**20:.0f} MB"), ("grow time", f"{t_grow:.0f} s")]
            proc, state = backup.procedure()
            ctx = Context(target=target, mesh=mesh, state=state, log=lambda line: print("  " + line, flush=True))
            t_proc, records = timed(lambda: proc.run(ctx))
            t_raw = raw_backup(target, secrets)
            sizes = {a["name"]: a["size"] for a in state.manifest["artefacts"]}
            rows += [("backup procedure (9 steps, verified)", f"{t_proc:.1f} s"),
                     *((f"  step: {r.name[:48]}", f"{r.seconds:.1f} s") for r in records),
                     ("raw pg_dump -Fc | aws s3 cp - (both dumps)", f"{t_raw:.1f} s"),
                     ("procedure / raw (budget 1.15x)", f"{t_proc / t_raw:.2f}x"),
                     ("postgres.dump size", f"{sizes['postgres.dump'] / 2**20:.0f} MB"),
                     ("embeddings.dump size", f"{sizes['embeddings.dump'] / 2**20:.0f} MB")]
            dump = Path(tmp) / "postgres.dump"
            t_dl, _ = timed(lambda: mesh.s3.transfer.download_file(
                target.s3.bucket, f"{PREFIX}/{state.id}/postgres.dump", str(dump)))
            rows.append(("download postgres.dump from S3", f"{t_dl:.1f} s"))
            restores = restore_times(dump)
            rows += [(k, f"{v:.1f} s") for k, v in restores.items()]
            a, b = restores.values()
            rows.append(("parallel / serial", f"{a / b:.2f}x"))
        finally:
            if not args.keep:
                mesh.s3.delete_prefix(PREFIX + "/")
                with postgres.connect(secrets) as admin:
                    admin.execute(f"DROP DATABASE IF EXISTS {DB}")
    width = max(len(k) for k, _ in rows)
    print(f"\n{'measure'.ljust(width)}  value\n{'-' * width}  -----")
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")


if __name__ == "__main__":
    main()
