"""The operator docs keep up with the code: every setting is documented in docs/configuration.md.

The settings table there is generated from the Settings model; after adding or changing a field,
print a fresh table with

    .venv/bin/python -m tests.test_docs

and paste it over the old one.
"""

from __future__ import annotations

import json
import re
import types
import typing
from enum import Enum
from pathlib import Path

from pydantic_core import PydanticUndefined

from siskamling.core.config import INSECURE_SECRET, Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
ENV_PREFIX = Settings.model_config["env_prefix"]
ROW = re.compile(r"^\|\s*`(SISKAMLING_[A-Z0-9_]+)`\s*\|\s*`([a-z0-9_]+)`\s*\|", re.MULTILINE)


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field}".upper()


def _type_name(annotation) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType | typing._UnionGenericAlias) and len(args) == 1:  # type: ignore[attr-defined]
        return _type_name(args[0]) + " (optional)"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(m.value for m in annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(str(a) for a in typing.get_args(annotation))
    return {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def _default(name: str, value) -> str:
    if value is PydanticUndefined:
        return "(required)"
    if value is None:
        return "(none)"
    if name == "secret_key" and value == INSECURE_SECRET:
        return "insecure placeholder: **set it**"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        value = str(value).lower()
    if isinstance(value, dict):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    return "`" + text + "`" if text else '`""` (empty)'


def _limits(metadata) -> str:
    words = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for item in metadata:
        for attr, sign in words.items():
            if getattr(item, attr, None) is not None:
                parts.append(f"{sign} {getattr(item, attr)}")
        if getattr(item, "pattern", None):
            parts.append(f"matches `{item.pattern}`")
    return f" ({', '.join(parts)})" if parts else ""


def settings_table() -> str:
    """The Markdown table of every setting, for docs/configuration.md."""
    lines = ["| environment variable | TOML key | type | default | description |", "|---|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        description = ((field.description or "") + _limits(field.metadata)).replace("|", "\\|")
        lines.append(f"| `{env_name(name)}` | `{name}` | {_type_name(field.annotation)} | "
                     f"{_default(name, field.get_default(call_default_factory=True))} | {description} |")
    return "\n".join(lines)


def documented() -> dict[str, str]:
    return dict(ROW.findall(DOC.read_text(encoding="utf-8")))


def test_every_setting_is_documented():
    rows = documented()
    missing = [env_name(name) for name in Settings.model_fields if env_name(name) not in rows]
    assert not missing, (f"docs/configuration.md lacks {', '.join(missing)}: regenerate its table with "
                         "`python -m tests.test_docs`")


def test_no_documented_setting_is_stale():
    rows = documented()
    stale = [env for env, key in rows.items() if key not in Settings.model_fields or env != env_name(key)]
    assert not stale, f"docs/configuration.md documents settings that do not exist: {', '.join(stale)}"


if __name__ == "__main__":
    print(settings_table())
