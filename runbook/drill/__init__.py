"""The DR drill's parts (runbook/procedures/dr_drill.py): the recovery environment's configuration from a
backup (environment.py), the comparison with the source (compare.py), and the runbook's Realistic Recovery
Targets beside what the drill measured (targets.py)."""
