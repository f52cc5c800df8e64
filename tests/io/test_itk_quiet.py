"""What C code prints on stderr inside ``quiet_itk`` is replayed on success and dropped on failure,
from any number of threads; ITK's own warnings are off once the io readers are imported."""

from __future__ import annotations

import os
import threading

import pytest
import SimpleITK as sitk

from amoseg.io.itk_quiet import quiet_itk


def _print_below_python(text: str) -> None:
    os.write(2, text.encode())  # as C code does: straight to descriptor 2


def test_output_is_replayed_when_the_block_succeeds(capfd):
    with quiet_itk():
        _print_below_python("kept\n")
        assert capfd.readouterr().err == ""  # held back while the block runs
    assert capfd.readouterr().err == "kept\n"


def test_output_is_dropped_when_the_block_fails(capfd):
    with pytest.raises(RuntimeError), quiet_itk():
        _print_below_python("** ERROR: NWAD: wrote only 0 of 262144 bytes to file\n")
        raise RuntimeError("write failed")
    assert capfd.readouterr().err == ""


def test_overlapping_blocks_in_threads_share_one_capture_and_restore_stderr(capfd):
    before = os.fstat(2)
    inside = threading.Barrier(4)

    def work(index: int) -> None:
        with quiet_itk():
            inside.wait()  # all four blocks are open at once
            _print_below_python(f"thread {index}\n")
            inside.wait()

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(capfd.readouterr().err.splitlines()) == [f"thread {index}" for index in range(4)]
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_nested_blocks_replay_once(capfd):
    with quiet_itk():
        _print_below_python("outer\n")
        with quiet_itk():
            _print_below_python("inner\n")
    assert capfd.readouterr().err == "outer\ninner\n"


def test_itk_warnings_are_off_once_the_readers_are_imported():
    import amoseg.io.sitk_io  # noqa: F401

    assert not sitk.ProcessObject.GetGlobalWarningDisplay()
