"""The runbook's destructive procedures as runbook.procedure.Procedure objects."""
