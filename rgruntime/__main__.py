"""``python -m rgruntime``: the same as the ``rgruntime`` command."""

import sys

from rgruntime.cli import main

sys.exit(main())
