"""``python -m amoseg`` (and ``torchrun -m amoseg``) run the command line."""

import sys

from amoseg.cli import main

sys.exit(main())
