"""`python -m dsd ...` = the `dsd` command (for scripts that must use this interpreter)."""
from .cli import main

main()
