"""``python -m pipelines.monitor``: see :mod:`pipelines.monitor.run`."""

import sys

from pipelines.monitor.run import main

sys.exit(main())
