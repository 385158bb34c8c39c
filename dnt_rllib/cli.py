"""What every command line shares: its parser, over the module's docstring, and bad input
refused in one line (``error: …`` on stderr, exit status 2) before any work starts."""

from __future__ import annotations

import argparse
import sys

from dnt_rllib.common import first_line
from dnt_rllib.twin.checkpoint import TwinCheckpointError
from dnt_rllib.validation import ConfigError

#: The exit status of refused input.
BAD_INPUT = 2
#: What a CLI refuses in one line: a bad setting, a twin checkpoint that does not fit, a
#: file or folder it cannot read or write.
REFUSED = (ConfigError, TwinCheckpointError, OSError)


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """``python -m <prog>``'s parser; ``--help`` shows ``description`` as written."""
    return argparse.ArgumentParser(
        prog=f"python -m {prog}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def refuse(err: BaseException | str) -> int:
    """Print ``error: <one line>`` to stderr; return :data:`BAD_INPUT`. An ``OSError`` names
    its file and the reason."""
    if isinstance(err, OSError):
        text = f"{err.filename or ''}: {err.strerror or err}"
    else:
        text = err if isinstance(err, str) else first_line(err)
    print(f"error: {text}", file=sys.stderr)
    return BAD_INPUT
