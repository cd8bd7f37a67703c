"""apollo_cli.locks: claims on outputs, held by real processes, and stale temporaries.

Another process holds its claim through a small Python child (helpers.held_elsewhere) that
claims, says so on stdout, and keeps the claim until its stdin is closed (or it is killed).
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from apollo_cli import locks
from helpers import held_elsewhere


def test_a_claim_names_its_owner_and_is_removed_when_released(tmp_path: Path) -> None:
    output = tmp_path / "song.flac"
    with locks.claim(output) as claim:
        assert claim.path == tmp_path / ".song.flac.lock"
        assert claim.path.read_text() == f"{os.getpid()} {socket.gethostname()}\n"
        assert locks.describe_owner(output) == f"pid {os.getpid()} on {socket.gethostname()}"
        assert not locks.is_claimed_elsewhere(output)  # ours
        with pytest.raises(locks.ClaimedElsewhere):  # one claim, one owner, even in one process
            locks.claim(output)
    assert os.listdir(tmp_path) == []
    claim.release()  # twice is harmless
    with locks.claim(output):  # and it can be claimed again
        pass


def test_a_claim_held_by_another_process(tmp_path: Path) -> None:
    output = tmp_path / "song.flac"
    with held_elsewhere(output) as holder:
        assert locks.is_claimed_elsewhere(output)
        owner = locks.try_claim(output)
        assert owner == f"pid {holder.pid} on {socket.gethostname()}"
        with pytest.raises(
            locks.ClaimedElsewhere, match=rf"being written by another apollo run \(pid {holder.pid} on "
        ):
            locks.claim(output)
        holder.stdin.close()  # type: ignore[union-attr]
        assert holder.wait(timeout=30) == 0
    assert not locks.is_claimed_elsewhere(output)
    with locks.claim(output):
        pass


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    output = tmp_path / "song.flac"
    with held_elsewhere(output) as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert locks.lock_path(output).exists()  # left behind, but locked by nobody
    assert not locks.is_claimed_elsewhere(output)
    with locks.claim(output) as claim:
        assert claim.path.read_text().split()[0] == str(os.getpid())
    assert not locks.lock_path(output).exists()


def test_stale_temporaries_are_removed_only_when_nobody_owns_them(tmp_path: Path) -> None:
    output = tmp_path / "song.flac"
    temp = tmp_path / ".song.flac.0badf00d.part"
    other = tmp_path / ".other.flac.0badf00d.part"
    odd = tmp_path / ".song.flac.not-hex!.part"
    for path in (temp, other, odd):
        path.write_bytes(b"partial")
    with held_elsewhere(output):
        assert locks.remove_stale_temps(output) == []  # the live owner's work in progress
        assert temp.exists()
    assert locks.remove_stale_temps(output) == [temp]  # nobody's now
    assert other.exists() and odd.exists()
    temp.write_bytes(b"partial")
    with locks.claim(output):  # under our own claim: left by a killed run, so stale
        assert locks.remove_stale_temps(output) == [temp]


def test_folders_made_for_a_claim_go_when_nothing_was_written(tmp_path: Path) -> None:
    output = tmp_path / "a" / "b" / "song.flac"
    with locks.claim(output, make_parents=True):
        assert output.parent.is_dir()
    assert not (tmp_path / "a").exists()
    with locks.claim(output, make_parents=True):
        output.write_bytes(b"done")
    assert output.exists() and sorted(os.listdir(output.parent)) == ["song.flac"]


def test_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(locks.OutputError, match="does not exist"):
        locks.claim(tmp_path / "nope" / "song.flac")


def test_a_file_system_without_locks_is_worked_on_unguarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(locks.fcntl, "flock", no_locks)
    output = tmp_path / "song.flac"
    temp = tmp_path / ".song.flac.0badf00d.part"
    temp.write_bytes(b"partial")
    with locks.claim(output):  # rather than refusing to write at all
        assert locks.remove_stale_temps(output) == [temp]
    assert os.listdir(tmp_path) == []
