"""The base of every error a user can cause in the CLI: printed as one line, exit code 1."""


class UserError(Exception):
    """Settings, project, build, vendoring or wrangler trouble the user can fix; the message says how."""
