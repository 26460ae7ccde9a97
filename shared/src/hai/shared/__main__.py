"""``python -m hai.shared`` runs the ``hai`` command."""

import sys

from hai.shared.cli import main

sys.exit(main())
