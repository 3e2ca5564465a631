"""Shared by the hardening tests: run a command the way a user does and get its one-line error."""

from __future__ import annotations

import pytest

from farreid.cli import main


def cli_error(argv: list[str], capsys) -> str:
    """The command must stop with exit status 2 and exactly one `error: ...` line (no traceback); returns it."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert lines and lines[-1].startswith("error: "), err
    return lines[-1]
