import pickle

from amoseg.errors import InputError, name_parameters


def test_input_error_survives_pickling_between_processes():
    error = pickle.loads(pickle.dumps(InputError("a/b.nii.gz", "file is empty (0 bytes)")))
    assert isinstance(error, InputError)
    assert str(error) == "a/b.nii.gz: file is empty (0 bytes)"
    assert error.problem == "file is empty (0 bytes)"


def test_a_message_names_api_keywords_and_the_reader_chooses_their_wording():
    message = "`modality`: unknown modality 'XR'; pass `allow_missing`, see `amoseg stats` and `plans.json`"
    flags = {"modality": "--modality", "allow_missing": "--allow-missing"}
    assert name_parameters(message, flags.get) == (
        "--modality: unknown modality 'XR'; pass --allow-missing, see `amoseg stats` and `plans.json`"
    )
    assert name_parameters(message, lambda keyword: None) == message
