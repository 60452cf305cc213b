"""Continuous WAL archiving and point-in-time recovery with pgBackRest (docs/pitr.md)."""
