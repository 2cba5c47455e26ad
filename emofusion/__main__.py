"""`python -m emofusion` and `torchrun ... -m emofusion train ...`: the command line."""

import sys

from emofusion.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
