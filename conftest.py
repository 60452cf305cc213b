"""Root conftest: loads the suite's pytest plugins (fixtures/). Tests live in checks/ (read-only),
procedures/ (destructive, behind markers) and tests/ (the suite's own tests)."""
pytest_plugins = [
    "fixtures.options",
    "fixtures.target",
    "fixtures.reports",
    "fixtures.safety",
]
