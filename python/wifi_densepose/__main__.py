import sys

from .cli import main

# Guarded so that importing the module (a stub checker walking the package does) does not
# run the command line; `python -m wifi_densepose` still does.
if __name__ == "__main__":
    sys.exit(main())
