"""`python -m metricgate` is the `metricgate` command."""

import sys

from metricgate.cli import main

sys.exit(main())
