"""``python -m symmle``: the command line."""

from symmle.cli import main

if __name__ == "__main__":
    main()
