"""``python -m dnt_rllib.report``."""

import sys

from dnt_rllib.report import main

sys.exit(main())
