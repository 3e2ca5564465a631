"""Output locations: an existing file where a folder goes (or a folder where a file goes), a read-only place and a
full disk are one message naming the path, before the work where possible; no *.tmp file is ever left behind,
and our own stale temp files are removed when a run starts again."""

import errno
import os

import pytest

from _eval_data import challenge_protocols
from _hardening import cli_error
from farreid.config import load_config
from farreid.eval import save_protocol
from farreid.utils import io as fio
from farreid.utils.run import create_run


@pytest.fixture
def features(tmp_path):
    root = tmp_path / "features"
    for p in challenge_protocols(nq=4, ng=8):
        save_protocol(p, root)
    return root


# command -> (argv builder taking (out, features, tmp_path), what the command writes at `out`: dir or file)
COMMANDS = {
    "train": (lambda out, f, t: ["train", "-c", "demo_tiny", f"out_dir={out}", f"data.root={t}"], "dir"),
    "eval": (lambda out, f, t: ["eval", "-f", f, "-o", out, "eval.show_queries=0"], "dir"),
    "extract": (lambda out, f, t: ["extract", "--checkpoint", t / "c.pt", "-i", t, "-o", out], "dir"),
    "search": (lambda out, f, t: ["search", "-g", f / "A2G" / "gallery", "-q", f / "A2G" / "query", "-o", out], "dir"),
    "export": (lambda out, f, t: ["export", "onnx", "--checkpoint", t / "c.pt", "-o", out], "file"),
    "synth": (lambda out, f, t: ["data", "synth", "--ids", "4", "-o", out], "dir"),
    "demo": (lambda out, f, t: ["demo", "--out", out], "dir"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_output_of_the_wrong_kind_is_refused_naming_it(command, features, tmp_path, capsys):
    build, kind = COMMANDS[command]
    out = tmp_path / "taken"
    if kind == "dir":
        out.write_text("a file of mine")
    else:
        out.mkdir()
    line = cli_error(build(out, features, tmp_path), capsys)
    assert str(out) in line
    assert (out.read_text() == "a file of mine") if kind == "dir" else list(out.iterdir()) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_read_only_location_is_refused_before_work(command, features, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(fio.os, "access", lambda p, mode: False if str(p).startswith(str(locked)) else real_access(p, mode))
    build, kind = COMMANDS[command]
    out = locked / ("model.onnx" if kind == "file" else "out")
    line = cli_error(build(out, features, tmp_path), capsys)
    assert str(locked) in line and "read-only" in line
    assert list(locked.iterdir()) == []


def _full_disk(monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fio.os, "fsync", fsync)


@pytest.mark.parametrize("command", ["eval", "search"])
def test_full_disk_is_one_message_and_leaves_no_temp_file(command, features, tmp_path, capsys, monkeypatch):
    _full_disk(monkeypatch)
    out = tmp_path / "results"
    line = cli_error(COMMANDS[command][0](out, features, tmp_path), capsys)
    assert "the disk is full" in line and str(out) in line
    assert list(tmp_path.rglob("*.tmp")) == []


def test_full_disk_met_outside_our_writers_is_still_one_line(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    def write_bytes(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    line = cli_error(["data", "synth", "--ids", "4", "-o", tmp_path / "synth"], capsys)
    assert "the disk is full" in line and str(tmp_path / "synth") in line


def test_a_killed_writers_temp_files_are_removed_when_the_run_starts_again(tmp_path):
    cfg = load_config("demo_tiny", [f"out_dir={tmp_path}", "name=run"])
    run = create_run(cfg, log=False)
    stale = [run.checkpoints / ".stage2-step00000012.pt.k3j2h1.tmp", run.results / ".metrics.json.abc.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    mine = run.checkpoints / "notes.tmp"  # not a name our writers use
    mine.write_text("mine")
    create_run(cfg, log=False)
    assert not any(p.exists() for p in stale) and mine.read_text() == "mine"
