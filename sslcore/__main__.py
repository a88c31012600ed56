"""``python -m sslcore``: see :mod:`sslcore.cli`."""
from sslcore.cli import run

if __name__ == "__main__":
    run()
