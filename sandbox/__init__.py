"""The local sandbox deployment: a real, disposable Developer Mesh on 127.0.0.1 (see sandbox/README.md)."""
