"""``python -m tsforge.cli`` runs the command line."""

import sys

from tsforge.cli import main

sys.exit(main())
