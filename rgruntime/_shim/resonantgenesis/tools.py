"""The guide's ``from resonantgenesis.tools import Tool, cache``: :mod:`rgruntime.tools`."""

from rgruntime.tools import *  # noqa: F403 - the same names, by design
from rgruntime.tools import __all__  # noqa: F401 - the names re-exported
