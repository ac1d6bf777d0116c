"""Forms generated from a JSON schema (what msgspec produces for a config Struct), and the
submitted form read back into JSON the schema's validation then judges.

For configuration forms of plugins whose shape is only known at run time, such as a health-check
strategy's config::

    fields = form_fields(strategy["configSchema"], current_config)
    # template: {% from "core/schema_form.html" import schema_fields %}{{ schema_fields(fields) }}
    config = read_form(strategy["configSchema"], await view.form())

Conventions: a property with ``"x-secret": true`` is a password field; its stored value is never
put into the page (the field shows :data:`MASK` when one is set, and sending the mask back keeps
the stored value, as the healthcheck plugin's update does); a map whose values are secrets is a
row per entry, a name and a password input (the mask again for stored values). Booleans are
checkboxes, enums are selects, numbers are number inputs, lists of strings or numbers and string
maps are one entry per line (``key: value`` for maps), nested objects are fieldsets, and anything
else is a JSON text area.
Field names are the property paths joined with ``.`` under a prefix (``config.headers``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# What a secret field shows (and sends back) when a value is stored: the one mask of every secret.
from ..vault import MASK

_SCALARS = ("string", "integer", "number", "boolean")


@dataclass
class Field:
    """One input of a generated form; ``kind`` picks the widget."""

    name: str
    label: str
    kind: str  # text, password, number, checkbox, select, lines, pairs, secret_pairs, json, group
    required: bool = False
    description: str = ""
    value: Any = ""
    options: list[str] = field(default_factory=list)
    step: str = "any"
    children: list[Field] = field(default_factory=list)


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` into ``$defs`` and unwrap ``anyOf: [X, null]`` (an optional field)."""
    seen = 0
    node = dict(schema)
    while seen < 32:
        seen += 1
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            continue
        options = node.get("anyOf")
        if isinstance(options, list):
            real = [o for o in options if o.get("type") != "null"]
            if len(real) == 1:
                rest = {k: v for k, v in node.items() if k != "anyOf"}
                node = {**real[0], **rest}
                continue
        break
    return node


def _label(name: str, schema: Mapping[str, Any]) -> str:
    title = schema.get("title")
    if isinstance(title, str) and title:
        return title
    spaced = "".join(f" {c.lower()}" if c.isupper() else c for c in name)
    return spaced[:1].upper() + spaced[1:]


def _kind(schema: Mapping[str, Any]) -> str:
    if schema.get("x-secret"):
        return "password"
    if "enum" in schema:
        return "select"
    kind = schema.get("type")
    if kind == "boolean":
        return "checkbox"
    if kind in ("integer", "number"):
        return "number"
    if kind == "string":
        return "text"
    if kind == "array" and schema.get("items", {}).get("type") in _SCALARS[:3]:
        return "lines"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if (
            isinstance(extra, dict)
            and extra.get("type") == "string"
            and not schema.get("properties")
        ):
            return "secret_pairs" if extra.get("x-secret") else "pairs"
        if schema.get("properties"):
            return "group"
    return "json"


def form_fields(
    schema: Mapping[str, Any],
    values: Mapping[str, Any] | None = None,
    *,
    prefix: str = "config",
    root: Mapping[str, Any] | None = None,
) -> list[Field]:
    """The fields of an object schema, filled from ``values`` (a stored config, whose secret
    fields are masked or absent: their values are never rendered)."""
    root = root if root is not None else schema
    node = _resolve(schema, root)
    values = values or {}
    required = set(node.get("required", []))
    fields: list[Field] = []
    for name, raw in (node.get("properties") or {}).items():
        prop = _resolve(raw, root)
        kind = _kind(prop)
        path = f"{prefix}.{name}"
        current = values.get(name, prop.get("default"))
        item = Field(
            name=path,
            label=_label(name, prop),
            kind=kind,
            required=name in required,
            description=str(prop.get("description", "")),
        )
        if kind == "password":
            item.value = MASK if current not in (None, "") else ""
        elif kind == "select":
            item.options = [str(o) for o in prop["enum"]]
            item.value = "" if current is None else str(current)
        elif kind == "checkbox":
            item.value = bool(current)
        elif kind == "number":
            item.value = "" if current is None else current
            item.step = "1" if prop.get("type") == "integer" else "any"
        elif kind == "lines":
            item.value = "\n".join(str(v) for v in current or [])
        elif kind == "pairs":
            item.value = "\n".join(f"{k}: {v}" for k, v in (current or {}).items())
        elif kind == "secret_pairs":
            # Only the names: each stored value shows as the mask.
            item.value = [str(k) for k in (current or {})]
        elif kind == "group":
            item.children = form_fields(prop, current or {}, prefix=path, root=root)
        elif kind == "json":
            item.value = "" if current is None else json.dumps(current, indent=2)
        else:
            item.value = "" if current is None else str(current)
        fields.append(item)
    return fields


def read_form(
    schema: Mapping[str, Any],
    form: Any,
    *,
    prefix: str = "config",
    root: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON object a submitted generated form stands for (``form`` offers ``get(name)``
    and ``all(name)``, as the UI's form does). Values that do not convert
    (``"abc"`` for a number, broken JSON) are passed on as text: the procedure's validation
    refuses them with a message naming the field. Empty optional fields are left out."""
    root = root if root is not None else schema
    node = _resolve(schema, root)
    required = set(node.get("required", []))
    result: dict[str, Any] = {}
    for name, raw in (node.get("properties") or {}).items():
        prop = _resolve(raw, root)
        kind = _kind(prop)
        path = f"{prefix}.{name}"
        if kind == "group":
            result[name] = read_form(prop, form, prefix=path, root=root)
            continue
        if kind == "checkbox":
            result[name] = form.get(path) in ("on", "true", "1")
            continue
        if kind == "secret_pairs":
            keys, values = form.all(f"{path}.name"), form.all(f"{path}.value")
            if keys or name in required:
                result[name] = {
                    k.strip(): v for k, v in zip(keys, values, strict=False) if k.strip()
                }
            continue
        text = form.get(path)
        if text is None or (text == "" and name not in required):
            continue
        if kind == "number":
            result[name] = _number(text, prop.get("type") == "integer")
        elif kind == "lines":
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            item_type = _resolve(prop.get("items", {}), root).get("type")
            if item_type in ("integer", "number"):
                result[name] = [_number(line, item_type == "integer") for line in lines]
            else:
                result[name] = lines
        elif kind == "pairs":
            pairs: dict[str, str] = {}
            for line in text.splitlines():
                key, sep, value = line.partition(":")
                if key.strip():
                    pairs[key.strip()] = value.strip() if sep else ""
            result[name] = pairs
        elif kind == "json":
            try:
                result[name] = json.loads(text)
            except ValueError:
                result[name] = text
        elif kind == "select" and prop.get("type") in ("integer", "number"):
            result[name] = _number(text, prop.get("type") == "integer")
        else:
            result[name] = text
    return result


def _number(text: str, integer: bool) -> Any:
    try:
        return int(text) if integer else float(text)
    except ValueError:
        return text
