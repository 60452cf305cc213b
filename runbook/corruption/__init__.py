"""Data corruption recovery: the extent of the damage (extent.py) and bringing tables back (tables.py)."""
