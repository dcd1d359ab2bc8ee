"""``python -m recdrill`` runs the command line."""

import sys

from recdrill.cli import main

sys.exit(main())
