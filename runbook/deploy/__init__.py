"""The deploy's machinery beyond the procedure's steps (runbook/procedures/deploy.py): replicas behind the front
door replaced one at a time (replicas.py)."""
