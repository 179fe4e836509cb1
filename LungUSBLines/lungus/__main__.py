"""`python -m lungus` (and `torchrun -m lungus train ...`)."""

import sys

from lungus.cli import main

sys.exit(main())
