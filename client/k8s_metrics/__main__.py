"""``python -m k8s_metrics top nodes|pods ...``: see :mod:`k8s_metrics.top`."""

import sys

from .top import main

if __name__ == "__main__":
    sys.exit(main())
