"""Overrides: `section.key=value` strings (`--set` and the named flags) read, checked against
the tree and refused, naming the key, where they cannot be honoured."""

import ast
import dataclasses
import json

from rignet_keras.config.errors import ConfigError
from rignet_keras.config.fields import _field_type, _from_json, _type_name, _type_ok
from rignet_keras.config.model import check_model_kwargs
from rignet_keras.config.sections import SECTIONS, section_class

# The sections whose fields name a recipe's variant (see `check_recipe_overrides`).
VARIANT_SECTIONS = ("model", "data")


def parse_value(text):
    """A command-line value: JSON, else a Python literal, else the string itself."""
    if text in ("none", "None"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_assignment(text):
    """ "section.key=value" -> ("section.key", value)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like section.key=value")
    return key.strip(), parse_value(value.strip())


def split_key(key):
    section, _, field = key.partition(".")
    if section in ("name", "description") and not field:
        return section, None
    if section not in SECTIONS or not field:
        raise ConfigError(
            f"override key {key!r} must be section.key with section one of {SECTIONS} (or 'name')"
        )
    return section, field


def check_value(section, field, value):
    """Checks one override against the tree; returns the value to set."""
    if section == "model":
        value = tuple(value) if isinstance(value, list) else value
        check_model_kwargs({field: value})
        return value
    cls = section_class(section)
    names = {f.name for f in dataclasses.fields(cls)}
    if field not in names:
        raise ConfigError(
            f"{section}.{field} is not a {cls.__name__} field; choose from "
            f"{', '.join(sorted(names))}"
        )
    annotation = _field_type(cls, field)
    value = _from_json(cls, field, value)
    if not _type_ok(annotation, value):
        raise ConfigError(
            f"{section}.{field}={value!r}: expected {_type_name(annotation)}, received "
            f"{type(value).__name__}"
        )
    return value


def varied_fields(configs):
    """The `section.key` fields whose values differ among `configs` (a recipe's variants)."""
    trees = [c.to_dict() for c in configs]
    if len(trees) < 2:
        return set()
    varied = set()
    for section in SECTIONS:
        keys = set().union(*(t[section] for t in trees))
        for key in keys:
            values = {json.dumps(t[section].get(key), sort_keys=True) for t in trees}
            if len(values) > 1:
                varied.add(f"{section}.{key}")
    return varied


def check_recipe_overrides(recipe, variants, assignments):
    """Refuses overrides that set a model or data field the recipe's variants differ in (what
    makes a variant that variant: Table 3's `model.num_iterations`, Table 4's
    `model.gate_combine`); training fields such as the learning rate stay free.

    Args:
        recipe: the recipe's name (for the message), e.g. "recipes/table3.py".
        variants: {variant: RunConfig}.
        assignments: the overrides ("section.key=value" strings or (key, value) pairs).
    """
    varied = {k for k in varied_fields(variants.values()) if k.split(".")[0] in VARIANT_SECTIONS}
    for item in assignments:
        key = parse_assignment(item)[0] if isinstance(item, str) else item[0]
        if key in varied:
            raise ConfigError(
                f"{recipe} cannot honour {key}: its variants differ in it; choose a --variant "
                f"({', '.join(sorted(variants))}) instead of overriding it"
            )
