"""Switchover and failover of the target's PostgreSQL pair (docs/failover.md): the pre-flight, the fence, the
writer that measures RPO/RTO, repointing the services the Compose way, and rebuilding the old primary as the
new standby. Procedures: runbook/procedures/switchover.py and failover.py."""
