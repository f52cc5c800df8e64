import subprocess
import sys

from amoseg.cli import build_parser, main


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
