"""`python -m plumb ...`, the form `accelerate launch -m plumb ...` needs."""

from plumb.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
