"""The one exception type for user mistakes, shared by config and data loading."""


class ConfigError(ValueError):
    """A user mistake in the configuration; its message is one line naming key and value."""
