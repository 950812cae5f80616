"""The ``cunzheng`` command."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="cunzheng")
def main() -> None:
    """cunzheng (存证): evidence depository and verifier."""
