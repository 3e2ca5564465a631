"""Data loss: options are checked before anything is deleted, and --fresh / --overwrite remove only what farreid
wrote there; a folder holding anything else is refused with nothing deleted."""

import json
import os

import pytest

from _hardening import cli_error
from farreid.errors import FarreidError
from farreid.utils.io import OWNER_MARKER, claim_folder, clear_own_outputs


def _user_project(root):
    """A user's folder: their own notes beside nothing farreid wrote."""
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    return root


def _demo_folder_with_user_file(root):
    """An earlier demo's folder (marker + data/) into which the user put a file of their own."""
    claim_folder(root, "demo")
    (root / "data").mkdir()
    (root / "data" / "synthetic.json").write_text("{}")
    (root / "thesis.tex").write_text("mine")
    return root


def _unmarked_folder_with_data(root):
    """A folder that merely has the demo's names (data/, report.html) but no farreid marker: the user's."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "survey.csv").write_text("mine")
    (root / "report.html").write_text("<p>mine</p>")
    return root


def _synthetic_set_with_user_file(root):
    from farreid.data.synthetic import generate

    generate(root, num_ids=4, seed=0, frames=1, ground_tracklets=1, aerial_tracklets=1)
    (root / "labels_i_made.csv").write_text("mine")
    return root


CASES = {
    "demo --fresh --scale -1": (_user_project, ["demo", "--fresh", "--scale", "-1", "--out"], "--scale"),
    "demo --fresh bad override": (_user_project, ["demo", "--fresh", "model.pooling=max", "--out"], "model.pooling"),
    "demo --fresh on a user folder": (_user_project, ["demo", "--fresh", "--out"], "notes.txt"),
    "demo --fresh, user file in a demo folder": (_demo_folder_with_user_file, ["demo", "--fresh", "--out"], "thesis.tex"),
    "demo --fresh, no marker": (_unmarked_folder_with_data, ["demo", "--fresh", "--out"], OWNER_MARKER),
    "synth --overwrite, user file in the set": (
        _synthetic_set_with_user_file, ["data", "synth", "--ids", "4", "--overwrite", "-o"], "labels_i_made.csv"),
}


def _snapshot(root):
    return sorted((str(p.relative_to(root)), p.read_bytes() if p.is_file() else b"") for p in root.rglob("*"))


@pytest.mark.parametrize("make, argv, words", CASES.values(), ids=CASES.keys())
def test_nothing_a_user_owns_is_deleted(make, argv, words, tmp_path, capsys):
    root = make(tmp_path / "project")
    before = _snapshot(root)
    line = cli_error([*argv, root], capsys)
    assert words in line
    assert _snapshot(root) == before


def test_fresh_removes_exactly_what_farreid_wrote(tmp_path):
    root = claim_folder(tmp_path / "demo", "demo")
    (root / "eval" / "trained").mkdir(parents=True)
    (root / "report.html").write_text("old")
    (root / ".report.html.abc123.tmp").write_text("stale")
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    os.symlink(outside, root / "data")  # an owned name that is a link: the link goes, never its target
    clear_own_outputs(root, ("data", "eval", "report.html"), "demo")
    assert list(root.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "mine"


def test_a_used_folder_that_was_not_ours_is_never_marked(tmp_path):
    """`demo --out my_project` into a folder with the user's own data/ must not make a later --fresh delete it."""
    root = _unmarked_folder_with_data(tmp_path / "project")
    claim_folder(root, "demo")
    assert not (root / OWNER_MARKER).exists()
    with pytest.raises(FarreidError, match=f"has no {OWNER_MARKER}"):
        clear_own_outputs(root, ("data", "report.html"), "demo")
    assert (root / "data" / "survey.csv").read_text() == "mine"


def test_a_file_in_place_of_the_folder_is_refused(tmp_path):
    path = tmp_path / "file"
    path.write_text("mine")
    with pytest.raises(FarreidError, match="is a file"):
        clear_own_outputs(path, ("data",), "demo")
    assert path.read_text() == "mine"
    assert json.loads(claim_folder(tmp_path / "new", "demo").joinpath(OWNER_MARKER).read_text())["written_by"] == "farreid demo"
