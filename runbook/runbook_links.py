"""Where a check or procedure stands in the runbook: its section's heading in the shipped copy of the runbook
(docs/runbook/operations-runbook.md), as a link from a report row. The copy ships with the suite so that the
link works where the suite runs, and the section a row names is the one the suite was written from.

Keyed by test module, the unit the README's "Where things are" table maps to runbook sections; a check the
runbook has no step for links to the closest section it belongs under (webhooks: Health Checks)."""
from __future__ import annotations

import os
import re
from pathlib import Path

RUNBOOK = Path(__file__).resolve().parent.parent / "docs" / "runbook" / "operations-runbook.md"

SECTIONS = {
    "test_daily": "Morning Checklist (Start of Day)",
    "test_services": "Service Status Monitoring",
    "test_database": "Database Operations",
    "test_identifiers": "Database Operations",
    "test_health": "Comprehensive Health Check Script",
    "test_webhooks": "Health Checks",
    "test_frontdoor": "Health Checks",
    "test_monitoring": "Monitoring Status (If Configured)",
    "test_alerts": "Monitoring Status (If Configured)",
    "test_post_deploy": "Version Update Procedure",
    "test_security": "Image Verification",
    "test_capacity": "Resource Monitoring (Current Single-Instance)",
    "test_hosts": "Scaling Options (Limited by Single Instance)",
    "test_tuning": "Performance Tuning",
    "test_integrity": "Data Corruption Recovery",
    "test_tls": "Certificate Renewal",
    "test_wal_archive": "Disaster Recovery",
    "test_backup": "Manual Backup Procedure",
    "test_backup_verify": "Backup and Restore",
    "test_restore": "Restore Procedure",
    "test_pitr": "Disaster Recovery",
    "test_corruption_recovery": "Data Corruption Recovery",
    "test_switchover": "2. Database Failure Recovery",
    "test_failover": "2. Database Failure Recovery",
    "test_dr_drill": "1. Total System Failure (Manual Process)",
    "test_deploy": "Version Update Procedure",
    "test_load": "Load Testing",
    "test_maintenance": "Scheduled Maintenance Window",
    "test_fleet_maintenance": "Scheduled Maintenance Window",
    "test_cert_renewal": "Certificate Renewal",
    "test_emergency": "Service Degradation (Docker Compose)",
    "test_incident": "Security Incident Response",
}


def slug(heading: str) -> str:
    """The anchor a Markdown renderer (GitHub, GitLab) gives a heading: lower case, punctuation dropped,
    spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def section_of(nodeid: str) -> str | None:
    module = Path(nodeid.split("::", 1)[0]).stem
    return SECTIONS.get(module)


def link(nodeid: str, report_dir: Path) -> tuple[str, str] | None:
    """(href, heading) of a row's runbook section, relative to the report's directory (a report moved with
    its checkout still finds it); None for a test the runbook does not cover."""
    heading = section_of(nodeid)
    if heading is None:
        return None
    href = Path(os.path.relpath(RUNBOOK, report_dir.resolve())).as_posix()
    return f"{href}#{slug(heading)}", heading
