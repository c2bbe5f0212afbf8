"""Home of the ``resonantgenesis`` package: the build ships ``_shim/resonantgenesis`` as a
top-level package of its own (``pyproject.toml``: the wheel's ``force-include``, and
``dev-mode-dirs`` for editable installs)."""
