"""The configuration's error type and its one numeric check."""


class ConfigError(ValueError):
    """A configuration, override or resume the run cannot honour; the message names the key."""


def check_numbers(section, obj, minimums):
    """Refuses a numeric field below its smallest value: {field: smallest}; None (unset) and,
    for tuples, every element are checked. Raises `ConfigError` naming `section.field`."""
    for field, low in minimums.items():
        value = getattr(obj, field)
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if item is not None and not isinstance(item, bool) and item < low:
                raise ConfigError(f"{section}.{field} must be at least {low}; received {value!r}")
