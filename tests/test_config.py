"""Settings: validated at load, errors name the file, the line and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from relances.daemon.cli.main import main
from relances.daemon.config import LevelPolicy, Policy, Settings, load_settings, parse_yaml
from relances.daemon.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_project_settings_load_with_documented_defaults() -> None:
    settings = load_settings(ROOT / "settings.yaml")
    policy = settings.policy(None)
    assert [policy.level(n).delay_days for n in (1, 2, 3)] == [45, 45, 45]
    assert settings.timezone == "Europe/Paris"
    assert policy.level(3).attach_invoice is True
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.database_url.endswith("data/relances.db")


def _model_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        keys.append(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _model_keys(annotation, f"{prefix}{name}.")
    return keys


def test_settings_yaml_documents_every_key() -> None:
    """settings.yaml writes out every key of the model, each section under a comment."""
    text = (ROOT / "settings.yaml").read_text(encoding="utf-8")
    _, lines = parse_yaml(text, "settings.yaml")
    level_keys = [f"policies.default.levels.1.{k}" for k in _model_keys(LevelPolicy)]
    policy_keys = [f"policies.default.{k}" for k in _model_keys(Policy)]
    missing = [k for k in _model_keys(Settings) + level_keys + policy_keys if k not in lines]
    assert missing == []
    rows = text.splitlines()
    for number, row in enumerate(rows):
        if row and not row.startswith((" ", "#")):
            assert rows[number - 1].startswith("#"), f"no comment above {row!r}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("timezone: Mars/Olympus\n", "settings.yaml:1: timezone: unknown time zone"),
        ("policies:\n  default:\n    levels:\n      1: {delay_days: -3}\n"
         "      2: {}\n      3: {}\n",
         "settings.yaml:4: policies.default.levels.1.delay_days:"),
        ("daemon:\n  grace_period: 5\n  colour: blue\n",
         "settings.yaml:3: daemon.colour: unknown key"),
        ("policies:\n  default:\n    levels:\n      1: {}\n      2: {}\n",
         "settings.yaml:3: policies.default.levels: levels must be exactly 1, 2 and 3"),
        ("sender: [1, 2\n", "settings.yaml:2: invalid YAML"),
        ("policies:\n  other: {}\n",
         "settings.yaml:1: policies: a policy named 'default' is required"),
    ],
)
def test_bad_settings_name_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert expected.split(":", 1)[1] in message
    assert str(path) in message
    assert "\n" not in message


def test_unknown_channel_in_a_level_is_refused_with_its_line(tmp_path: Path) -> None:
    text = (ROOT / "settings.yaml").read_text(encoding="utf-8")
    text = text.replace("channels: [archive]", "channels: [archive, pigeon]", 1)
    assert "pigeon" in text
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    line = next(n for n, text_line in enumerate(text.splitlines(), 1) if "pigeon" in text_line)
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 1
    assert f"settings.yaml:{line}: policies.default.levels.1.channels.1: " \
           "channel 'pigeon' is not configured" in result.stderr


def test_check_config_accepts_the_project_settings() -> None:
    result = CliRunner().invoke(main, ["--config", str(ROOT / "settings.yaml"), "check-config"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout


def test_missing_settings_file_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.yaml"), "list"])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"relances: error: {tmp_path / 'nope.yaml'}: settings file not found"


@pytest.mark.parametrize(
    ("channels", "expected"),
    [
        ("  pigeon: {}\n", "channels.pigeon: unknown channel 'pigeon'"),
        ("  print:\n    copies: 2\n", "channels.print.printer: "),
        ("  email:\n    host: smtp.example\n    security: carrier-pigeon\n",
         "channels.email.security: "),
    ],
)
def test_channel_settings_are_checked_at_load(tmp_path: Path, channels: str,
                                              expected: str) -> None:
    text = (ROOT / "settings.yaml").read_text(encoding="utf-8")
    text = text.replace("channels:\n  archive:\n", f"channels:\n{channels}  archive:\n")
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 1
    assert expected in result.stderr
    assert f"{path}:" in result.stderr and result.stderr.count("\n") == 1


def test_broken_template_override_fails_check_config(tmp_path: Path) -> None:
    override = tmp_path / "my-templates" / "fr"
    override.mkdir(parents=True)
    (override / "letter_1.html").write_text(
        "<p>Bonjour</p>\n<p>{{ customer.nickname }}</p>\n", encoding="utf-8")
    text = (ROOT / "settings.yaml").read_text(encoding="utf-8")
    text = text.replace("  templates_dir: null", "  templates_dir: my-templates")
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 1
    assert "letter_1.html:2" in result.stderr and "nickname" in result.stderr


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('  escalate: "30 7 * * mon-fri"', '  escalate: "99 7 * * mon-fri"', "schedule.escalate: "),
        ("  invoice_pdf_pattern: invoices/{number}.pdf", "  invoice_pdf_pattern: inv/{numero}.pdf",
         "letters.invoice_pdf_pattern: the only placeholder is {number}"),
    ],
)
def test_check_config_refuses_what_the_daemon_would(tmp_path: Path, old: str, new: str,
                                                    expected: str) -> None:
    text = (ROOT / "settings.yaml").read_text(encoding="utf-8")
    assert old in text
    text = text.replace(old, new)
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if new.strip() in row)
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 1
    assert f"{path}:{line}: {expected}" in result.stderr
