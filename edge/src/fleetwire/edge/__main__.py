"""``python -m fleetwire.edge``: the ``fleetwire-edge`` command line."""

from fleetwire.edge.cli import main

if __name__ == "__main__":
    main()
