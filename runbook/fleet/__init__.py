"""Fleets (issue 14): many hosts in the target ([fleet], model.py), read from Ansible-style inventories
(inventory.py), checked host by host (checks/test_hosts.py) and changed host by host (rollout.py)."""
