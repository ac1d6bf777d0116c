"""The one error type of the procedure protocols, shared by server, handlers and clients.

A handler raises ``NotFound("System not found: 42")``; the dispatcher turns it into the wire
shape of whichever protocol the caller used; the Python client turns that back into the same
class.
"""

from __future__ import annotations

from typing import Any, ClassVar

#: HTTP status of every error code (SPEC §4.3; oRPC's common codes).
STATUS_BY_CODE: dict[str, int] = {
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_SUPPORTED": 405,
    "NOT_ACCEPTABLE": 406,
    "TIMEOUT": 408,
    "CONFLICT": 409,
    "PRECONDITION_FAILED": 412,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "UNPROCESSABLE_CONTENT": 422,
    "TOO_MANY_REQUESTS": 429,
    "CLIENT_CLOSED_REQUEST": 499,
    "INTERNAL_SERVER_ERROR": 500,
    "NOT_IMPLEMENTED": 501,
    "BAD_GATEWAY": 502,
    "SERVICE_UNAVAILABLE": 503,
    "GATEWAY_TIMEOUT": 504,
}

_DEFAULT_MESSAGES: dict[str, str] = {
    code: code.replace("_", " ").capitalize() for code in STATUS_BY_CODE
}
_DEFAULT_MESSAGES["INTERNAL_SERVER_ERROR"] = "Internal server error"


class RpcError(Exception):
    """An error a procedure call answers with: a code, its HTTP status, a message and optional data.

    ``procedure`` names the procedure the error belongs to, if any (the dispatcher sets it).
    """

    code: str = "INTERNAL_SERVER_ERROR"
    _subclass_by_code: ClassVar[dict[str, type[RpcError]]] = {}

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        data: dict[str, Any] | None = None,
        procedure: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        self.message = message or _DEFAULT_MESSAGES.get(self.code, self.code)
        self.data = data
        self.procedure = procedure
        self.status = status or STATUS_BY_CODE.get(self.code, 500)
        #: Extra HTTP response headers (e.g. a ``set-cookie`` clearing a revoked session cookie);
        #: never part of the body.
        self.headers = headers
        super().__init__(self.message)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        RpcError._subclass_by_code.setdefault(cls.code, cls)

    @classmethod
    def from_code(
        cls,
        code: str,
        message: str | None = None,
        *,
        data: dict[str, Any] | None = None,
        procedure: str | None = None,
        status: int | None = None,
    ) -> RpcError:
        """Build the most specific error class for ``code`` (``NotFound`` for ``NOT_FOUND``...)."""
        error_class = cls._subclass_by_code.get(code, RpcError)
        return error_class(message, code=code, data=data, procedure=procedure, status=status)

    def to_dict(self) -> dict[str, Any]:
        """The documented protocol's error body (SPEC §4.1)."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.procedure is not None:
            body["procedure"] = self.procedure
        if self.data is not None:
            body["data"] = self.data
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class BadRequest(RpcError):
    code = "BAD_REQUEST"


class Unauthorized(RpcError):
    code = "UNAUTHORIZED"


class Forbidden(RpcError):
    code = "FORBIDDEN"


class NotFound(RpcError):
    code = "NOT_FOUND"


class MethodNotSupported(RpcError):
    code = "METHOD_NOT_SUPPORTED"


class Conflict(RpcError):
    code = "CONFLICT"


class PayloadTooLarge(RpcError):
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(RpcError):
    code = "UNSUPPORTED_MEDIA_TYPE"


class TooManyRequests(RpcError):
    """429: the caller must wait; say how long with ``headers={"retry-after": "<seconds>"}``."""

    code = "TOO_MANY_REQUESTS"


class InternalServerError(RpcError):
    code = "INTERNAL_SERVER_ERROR"


class ServiceUnavailable(RpcError):
    code = "SERVICE_UNAVAILABLE"


def validation_error(issues: list[dict[str, Any]]) -> BadRequest:
    """The BAD_REQUEST of every input validation failure: ``data.issues = [{message, path}]``."""
    return BadRequest("Input validation failed", data={"issues": issues})
