import sys

from dnt_rllib.bench.cli import main

sys.exit(main())
