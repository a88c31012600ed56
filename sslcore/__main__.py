"""``python -m sslcore``: see :mod:`sslcore.cli`."""
import sys

from sslcore.cli import main

if __name__ == "__main__":
    sys.exit(main())
