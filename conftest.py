"""Root conftest. The suite's plugin (fixtures/plugin.py) comes from the package's pytest11 entry point,
which pytest loads before any conftest. This only covers runs where that did not happen: a checkout that
is not installed (PYTHONPATH=. pytest), or plugin autoloading turned off (PYTEST_DISABLE_PLUGIN_AUTOLOAD).
Loading it here as well would register the same module under a second name, which pytest refuses.
Tests live in checks/ (read-only), procedures/ (destructive, behind markers) and tests/ (the suite's own)."""
import sys

pytest_plugins = [] if "fixtures.plugin" in sys.modules else ["fixtures.plugin"]
