import subprocess
import sys

from amoseg.cli import _with_flags, build_parser, main


def test_help_lists_the_commands(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("check", "phantom", "demo"):
        assert command in out


def test_cli_import_stays_light():
    """``amoseg --help`` must answer at once: importing the CLI may not pull numpy, SimpleITK or torch."""
    code = "import sys, amoseg.cli; print(sorted(m for m in ('numpy', 'SimpleITK', 'torch', 'rich') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_subcommand_has_a_handler():
    parser = build_parser()
    subcommands = next(action for action in parser._actions if action.dest == "command")
    for name, sub in subcommands.choices.items():
        assert sub.get_default("handler") is not None, name


def test_a_file_system_error_is_one_line_naming_the_path(box_dataset, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["plan", str(box_dataset), "-o", str(blocker / "plans.json"), "--workers", "1"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "Traceback" not in error
    assert error.startswith("amoseg plan: error: ") and str(blocker) in error
    assert "Not a directory" in error


def _subcommands() -> dict:
    parser = build_parser()
    return next(action for action in parser._actions if action.dest == "command").choices


def _subcommand(name: str):
    return _subcommands()[name]


def test_library_messages_get_the_flag_that_sets_each_keyword():
    def wording(message: str, command: str) -> str:
        return _with_flags(message, _subcommands(), command)

    assert wording("`modality`: unknown; pass `modality` CT or MR", "predict") == (
        "--modality: unknown; pass --modality CT or MR"
    )
    # A short form when there is one, as the usage line shows it; a positional argument by its name.
    assert wording("choose another `output` for `pred`", "evaluate") == "choose another -o for PRED"
    # An option whose flag is not the keyword spelled with dashes; a keyword this command has not.
    assert wording("`n_ct` and `tolerance_mm`", "phantom") == "--ct and `tolerance_mm`"
    assert wording("`tolerance_mm`", "evaluate") == "--tolerance"
    # Another stage's keyword: that command with its flag.
    assert wording("rerun `preprocess.overwrite`", "train") == "rerun amoseg preprocess --overwrite"
    assert wording("with `train.resume`", "train") == "with --resume"
    assert wording("`nothing.overwrite`", "train") == "`nothing.overwrite`"


def test_every_option_is_stored_under_the_api_keyword_it_is_passed_as():
    """What lets the CLI name the flag of a keyword a library message names: dest == API keyword."""
    import inspect

    from amoseg import api, demo

    # Switches passed negated (--no-tta: tta=False), and what is not an argument of the function.
    others = {"no_tta", "no_postprocessing", "no_amp", "no_plots", "model_info", "help"}
    for name in _subcommands():
        keywords = set(inspect.signature(getattr(demo if name == "demo" else api, name)).parameters)
        if name == "demo":
            keywords |= {"n_ct", "n_mr", "seed", "cpu_step_seconds"}  # passed on to DemoSettings
        dests = {action.dest for action in _subcommand(name)._actions} - others
        assert dests <= keywords, (name, dests - keywords)


def test_the_api_is_annotated_with_one_return_type_per_function():
    import inspect

    from amoseg import api

    for name in api.__all__:
        function = getattr(api, name)
        if not inspect.isfunction(function):
            continue
        signature = inspect.signature(function)
        assert signature.return_annotation is not inspect.Signature.empty, name
        assert "|" not in str(signature.return_annotation), name
        for parameter in signature.parameters.values():
            assert parameter.annotation is not inspect.Parameter.empty, (name, parameter.name)


def test_predict_output_type_defaults_to_nifti_and_offers_dicom_seg(monkeypatch, tmp_path, capsys):
    import pytest

    from amoseg import api

    passed = {}
    monkeypatch.setattr(api, "predict", lambda **keywords: passed.update(keywords) or [])
    command = ["predict", "-i", str(tmp_path), "-o", str(tmp_path / "out"), "-m", str(tmp_path)]
    assert main(command) == 0
    assert passed["output_type"] == "nifti"
    assert main([*command, "--output-type", "dicom-seg"]) == 0
    assert passed["output_type"] == "dicom-seg"
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--output-type", "dicom"])
    assert stopped.value.code == 2
    assert "argument --output-type: invalid choice: 'dicom'" in capsys.readouterr().err
