"""Reading a section's fields from JSON and command-line values: their declared types, lists
back to tuples, and the type check of an override."""

import types
import typing


def _field_type(cls, name):
    hints = typing.get_type_hints(cls)
    return hints.get(name, typing.Any)


def _from_json(cls, name, value):
    """Lists back to tuples where the field holds tuples."""
    if isinstance(value, list) and _accepts(_field_type(cls, name), tuple):
        return tuple(value)
    return value


def _accepts(annotation, kind):
    if annotation in (typing.Any, object):
        return True
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_accepts(a, kind) for a in args)
    return annotation is kind


def _type_ok(annotation, value):
    if annotation in (typing.Any, object):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_type_ok(a, value) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _type_name(annotation):
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))
