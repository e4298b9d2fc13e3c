"""``python -m pytorch_devol.cli``: the same as the ``pytorch-devol`` command."""

import sys

from pytorch_devol.cli import main

sys.exit(main())
