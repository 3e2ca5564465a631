import subprocess
import sys

import pytest
from typer.testing import CliRunner

from farreid.cli import app, main

runner = CliRunner()
COMMANDS = ["data", "train", "eval", "score", "extract", "search", "export", "demo", "config"]


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_config_command_prints_resolved_yaml():
    result = runner.invoke(app, ["config", "-c", "demo_tiny", "model.pooling=mean"])
    assert result.exit_code == 0, result.output
    assert "pooling: mean" in result.output and "name: demo_tiny" in result.output


def test_bad_override_is_one_clear_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["config", "-c", "demo_tiny", "model.poolng=mean"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown config key 'model.poolng'" in err and "did you mean 'model.pooling'" in err
    assert "Traceback" not in err


def test_missing_config_is_one_clear_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["config", "-c", "missing.yaml"])
    assert exit_info.value.code == 2
    assert "config file not found: missing.yaml" in capsys.readouterr().err


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "farreid", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "extract" in out.stdout


def test_help_does_not_import_torch():
    """`farreid --help` and `farreid data --help` load no heavy module: torch, numpy, PIL and the model code are
    imported inside the commands that use them."""
    code = ("import sys; from farreid.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['data', '--help']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in ('torch', 'numpy', 'PIL', 'safetensors', 'av') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
