"""`resolve_data_dir` and `candidate_roots` share one lookup order, ending in ~/.hrsnn/data (where fetch writes)."""

from pathlib import Path

import pytest

from hrsnn.errors import ConfigError, DataNotFoundError
from hrsnn.tasks import files, resolve_data_dir


@pytest.fixture
def no_shared_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """cwd without ../shared/data, no editable-install candidate, $HRSNN_DATA unset, $HOME = tmp_path/home."""
    monkeypatch.delenv("HRSNN_DATA", raising=False)
    monkeypatch.setattr(files, "_repo_data_candidate", lambda: None)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_user_data_dir_is_found_when_no_shared_folder_exists(no_shared_data: Path) -> None:
    user = no_shared_data / ".hrsnn" / "data"
    user.mkdir(parents=True)
    assert resolve_data_dir() == user.resolve()


def test_not_found_error_lists_the_user_data_dir(no_shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as err:
        resolve_data_dir()
    message = str(err.value)
    assert str(no_shared_data / ".hrsnn" / "data") in message
    assert str((tmp_path / "shared" / "data").resolve()) in message
    assert "hrsnn data fetch" in message


def test_shared_folder_precedes_user_folder_and_explicit_roots_stay_authoritative(
    no_shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_shared_data / ".hrsnn" / "data").mkdir(parents=True)
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    assert resolve_data_dir() == shared.resolve()
    with pytest.raises(DataNotFoundError, match="given by --data-dir"):
        resolve_data_dir(tmp_path / "missing")
    with pytest.raises(ConfigError) as bad:
        resolve_data_dir(3)  # type: ignore[arg-type]
    assert bad.value.field == "data_dir"
    monkeypatch.setenv("HRSNN_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataNotFoundError, match=r"given by \$HRSNN_DATA="):
        resolve_data_dir()
