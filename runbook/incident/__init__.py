"""The pieces of the security incident response (runbook/procedures/incident.py): the evidence bundle
(bundle.py), key revocation and the new smoke-test key (keys.py, secret_store.py), the front door where
sources are blocked (front_door.py), the security team's webhook (notify.py) and the probes that verify a
revocation took effect (verify.py). Plain Python: the deployment is reached through the component objects."""
