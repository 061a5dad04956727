"""The README's two set-up commands are the ones CI and users run."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shell_blocks(markdown: str) -> list[str]:
    return [block.split("\n", 1)[1].strip() for block in markdown.split("```")[1::2] if block.startswith("sh\n")]


def test_ci_runs_the_readme_test_command() -> None:
    readme_commands = shell_blocks((REPO / "README.md").read_text())
    ci_command = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert readme_commands[1] == ci_command


def test_the_first_command_installs_and_starts_the_demo() -> None:
    first = shell_blocks((REPO / "README.md").read_text())[0]
    assert first.endswith("r2p demo") and "pip install -e ." in first
