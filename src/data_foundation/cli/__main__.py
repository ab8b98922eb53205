"""`python -m data_foundation.cli`: the `foundation` command."""

from data_foundation.cli.app import main

if __name__ == "__main__":
    main()
