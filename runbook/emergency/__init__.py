"""Emergency Procedures > Service Degradation as a measured procedure: the alert types and what measures them
(alerts.py), read-only triage (triage.py), the remedy that fits what triage found (remedies.py), and the
verification that the measurement and the alert are back (verify.py). The procedure is
runbook/procedures/emergency.py."""
