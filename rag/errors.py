"""Errors a user can act on: the CLI and UI show their message as one line, never a traceback."""


class KuraError(Exception):
    """A problem with the user's input or environment; the message says what to do."""

    exit_code = 1


class ConfigError(KuraError):
    """Invalid configuration; exit code 2 like other usage errors."""

    exit_code = 2
