"""The exception tree shared by every Staffer package.

    StafferError
    ├── ConfigError            the user must fix something (a file, a key, a flag)
    ├── ProviderError          a model provider failed; carries provider, status and body
    │   ├── AuthenticationError        401/403: the key was rejected
    │   ├── RateLimitError             429, with retry_after when the provider said
    │   ├── ProviderUnavailableError   5xx, connect errors, timeouts, dropped streams
    │   ├── BadRequestError            400/404/422: the request itself is wrong
    │   │   └── ContextLengthError     the prompt does not fit the model's window
    │   └── ProtocolError              the provider answered something we cannot parse
    ├── ToolError              a tool refused or failed; the message is shown to the model
    │   └── PathEscapeError    a path resolves outside the workspace
    ├── StoreError             the store could not read or write
    │   ├── LeaseLostError     another process took over the run being written
    │   └── VersionConflictError   a compare-and-set write found another version
    └── RunError               a run stopped before it could answer (iteration cap, loop)

Errors carry what happened and what to do; they never log.
"""

from __future__ import annotations


class StafferError(Exception):
    """Base class of every error Staffer raises on purpose."""


class ConfigError(StafferError):
    """Something in the configuration must be fixed by the user.

    `key` names the setting (e.g. ``models.default``), `problem` says what is
    wrong with it, and `fix` says what to do.
    """

    def __init__(self, problem: str, *, key: str | None = None, fix: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.fix = fix
        parts = [f"{key}: {problem}" if key else problem]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__("\n".join(parts))


class ProviderError(StafferError):
    """A model provider failed. `retryable` tells the router whether to try again."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        body: str | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.body = body
        super().__init__(message)


class AuthenticationError(ProviderError):
    """The provider rejected the key (401/403)."""


class RateLimitError(ProviderError):
    """The provider is rate limiting us (429)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ProviderUnavailableError(ProviderError):
    """5xx, connection failures, timeouts and streams that broke off."""

    retryable = True


class BadRequestError(ProviderError):
    """The provider refused the request itself (400/404/422); retrying will not help."""


class ContextLengthError(BadRequestError):
    """The request does not fit the model's context window."""


class ProtocolError(ProviderError):
    """The provider sent something that is not valid for its wire format."""

    retryable = True


class ToolError(StafferError):
    """A tool failed or refused; the message is returned to the model as the tool result."""


class PathEscapeError(ToolError):
    """A path resolved outside the workspace (through `..`, an absolute path or a symlink)."""


class StoreError(StafferError):
    """The store could not complete an operation."""


class LeaseLostError(StoreError):
    """This process no longer holds the run it tried to write: another took it over."""


class VersionConflictError(StoreError):
    """A write that expected one version of a record found another (someone wrote first).

    `current` is the version found, 0 when the record does not exist."""

    def __init__(self, message: str, *, current: int) -> None:
        super().__init__(message)
        self.current = current


class RunError(StafferError):
    """A run ended without an answer: the iteration cap, the repetition breaker, cancellation."""
