"""`python -m dsd ...` = the `dsd` command (for scripts that must use this interpreter)."""
import sys

from .cli import main

sys.exit(main())
