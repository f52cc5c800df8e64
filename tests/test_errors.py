import pickle

from amoseg.errors import InputError


def test_input_error_survives_pickling_between_processes():
    error = pickle.loads(pickle.dumps(InputError("a/b.nii.gz", "file is empty (0 bytes)")))
    assert isinstance(error, InputError)
    assert str(error) == "a/b.nii.gz: file is empty (0 bytes)"
    assert error.problem == "file is empty (0 bytes)"
