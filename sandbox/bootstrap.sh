#!/usr/bin/env bash
# Installs what the sandbox and the suite need on a fresh Debian 12 machine, and nothing more.
# Idempotent: every step checks first, so a warm machine passes through in about a second.
# Sourced by sandbox/up and ./mesh; prints each step with its duration.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"

_step() { # _step "what" command...: run a step, print its duration
  local what="$1"; shift
  local t0=$SECONDS
  printf '  %-44s' "$what"
  if "$@" >>"${MESH_BOOTSTRAP_LOG:-/tmp/mesh-bootstrap.log}" 2>&1; then
    printf 'ok (%ss)\n' "$((SECONDS - t0))"
  else
    printf 'FAILED (%ss) - see %s\n' "$((SECONDS - t0))" "${MESH_BOOTSTRAP_LOG:-/tmp/mesh-bootstrap.log}"
    return 1
  fi
}

# Debian packages, by the command each one provides (a present command means nothing to install).
DEB_PACKAGES=(
  "/usr/sbin/dockerd:docker.io"
  "/usr/bin/docker-compose:docker-compose"
  "/usr/bin/docker-registry:docker-registry"
  "/usr/sbin/debootstrap:debootstrap"
  "/usr/bin/redis-cli:redis-tools"
  "/usr/lib/postgresql/15/bin/postgres:postgresql-15"
  "/usr/bin/psql:postgresql-client-15"
  "/usr/bin/curl:curl"
  "/usr/bin/ssh:openssh-client"  # the fleet checks reach their hosts with ssh (sandbox/fleet.py)
  "/usr/bin/jq:jq"
  "/usr/bin/node:nodejs"  # the S3 store, s3rver from npm (sandbox/objectstore.py)
  "/usr/bin/npm:npm"
  "/usr/bin/pgbackrest:pgbackrest"  # WAL archiving and base backups to S3 (sandbox/pgbackrest.py)
  "/usr/bin/bc:bc"
  "/usr/bin/chromium:chromium"
  # Started by sandbox/exporters.py as the sandbox's own daemons; the packages' services stay off.
  "/usr/bin/prometheus-node-exporter:prometheus-node-exporter"
  "/usr/bin/prometheus-postgres-exporter:prometheus-postgres-exporter"
  "/usr/bin/prometheus-redis-exporter:prometheus-redis-exporter"
  "/usr/bin/prometheus-alertmanager:prometheus-alertmanager"  # sandbox/alertmanager.py
  "/usr/sbin/haproxy:haproxy"  # the front door, TLS by SNI (sandbox/frontdoor.py)
)

_missing_debs() {
  local entry
  for entry in "${DEB_PACKAGES[@]}"; do
    [ -x "${entry%%:*}" ] || printf '%s ' "${entry#*:}"
  done
}

_install_debs() {
  local missing; missing="$(_missing_debs)"
  [ -z "$missing" ] && return 0
  # Debian's postgresql package would create and start a "main" cluster on :5432; the sandbox runs its own.
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf \
    || echo 'create_main_cluster = false' >>/etc/postgresql-common/createcluster.conf
  # policy-rc.d keeps package scripts from starting daemons (dockerd, redis) on the ports we use.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' RETURN
  timeout 300 apt-get update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends $missing
}

_python() { # a Python >= 3.11 with venv
  local py
  for py in python3.11 python3.12 python3.13 python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$py"; return 0
    fi
  done
  return 1
}

_install_venv() {
  local stamp="$VENV/.installed-$(sha1sum "$REPO/pyproject.toml" | cut -c1-12)"
  [ -f "$stamp" ] && return 0
  local py; py="$(_python)" || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv python3-pip; py="$(_python)"; }
  [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
  timeout 900 "$VENV/bin/pip" install -q --disable-pip-version-check -e "$REPO"
  rm -f "$VENV"/.installed-*; touch "$stamp"
}

mesh_bootstrap() {
  if [ "$(id -u)" != 0 ]; then
    echo "sandbox: must run as root (it installs packages and starts PostgreSQL, dockerd)" >&2; return 1
  fi
  echo "bootstrap:"
  _step "Debian packages" _install_debs
  _step "Python virtualenv (.venv)" _install_venv
}
