"""The error every loader raises for unreadable or invalid input."""


class BadSampleError(RuntimeError):
    """A sample's file or record is missing or invalid; the message names the file and sample token."""

    def __init__(self, message: str, path: str | None = None, token: str | None = None) -> None:
        where = ", ".join(part for part in (f"file {path}" if path else "", f"sample {token}" if token else "") if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.token = token
