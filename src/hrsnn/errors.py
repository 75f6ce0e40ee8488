"""Exceptions raised for bad user input.

Every error names the offending field and value, so a user never has to read a traceback from deep inside.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A configuration field holds a bad value.

    Args:
        field: dotted name of the field, e.g. ``"model.hidden"``.
        value: the value that was given.
        reason: what is wrong, as a short phrase (``"must be > 0"``).
    """

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as message + attributes, whatever the subclass's ``__init__`` takes (errors cross processes)."""
        return (_restore_error, (type(self), self.args, self.__dict__))


def _restore_error(cls: type[ConfigError], args: tuple[Any, ...], state: dict[str, Any]) -> ConfigError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


class DataNotFoundError(FileNotFoundError):
    """A data file the task needs is absent; the message says where it was looked for and how to point to it."""


class Terminated(KeyboardInterrupt):
    """The process received a termination signal (SIGTERM from a job scheduler, SIGHUP); handled like Ctrl-C."""

    def __init__(self, signal_name: str) -> None:
        self.signal_name = signal_name
        super().__init__(signal_name)


class RunInterrupted(KeyboardInterrupt):
    """A recorded run was interrupted (Ctrl-C or a termination signal) and marked ``interrupted`` in the store.

    Attributes:
        run_id: the run. command: the sub-command that resumes it (``"train"`` or ``"lnp"``). reason: what stopped it.
    """

    def __init__(self, run_id: int, command: str, reason: str) -> None:
        self.run_id = run_id
        self.command = command
        self.reason = reason
        super().__init__(f"run {run_id} {reason}; resume it with `hrsnn {command} --resume {run_id}`")


class NonFiniteError(RuntimeError):
    """Training met a NaN or infinity (loss, gradient, parameter or validation output) and stopped.

    The message says what was non-finite, where (epoch, batch, tensor name) and what to try.
    """


class MissingDependencyError(ConfigError):
    """The option ``field=value`` needs a package that is not installed; the one-line message says how to get it.

    Args:
        field, value: the option that needs the package (e.g. ``"betweenness_backend"``, ``"networkx"``).
        package: the package's import and PyPI name.
        extra: the hrsnn extra that provides it; None for a default dependency (then the install is broken).
    """

    def __init__(self, field: str, value: Any, package: str, extra: str | None = None) -> None:
        self.package = package
        self.extra = extra
        if extra is None:
            how = f"a dependency of hrsnn that is not installed; reinstall hrsnn or run `pip install {package}`"
        else:
            how = f"which is not installed; install it with `pip install 'hrsnn[{extra}]'` (or `pip install {package}`)"
        super().__init__(field, value, f"needs the package {package!r}, {how}")


class DataFormatError(ConfigError):
    """A file exists but cannot be used: unreadable, truncated, of another kind, or with contents that do not fit.

    ``field`` names the file's role (e.g. ``"QTDB file"``), ``value`` is its path and ``reason`` says what is wrong.
    """
