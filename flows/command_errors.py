"""One-line errors at the command line: the project's own errors, and a Prefect server that
refuses the client's credentials (basic auth, `PREFECT_SERVER_API_AUTH_STRING` on the server)."""

from __future__ import annotations

from typing import Any

import click
import httpx

from ocr_core.errors import ConfigError, OcrPipelineError

UNAUTHORIZED = 401


def unauthorized_message(error: httpx.HTTPStatusError) -> str:
    """What to do when the Prefect server answered 401: which setting to set."""
    server = str(error.request.url).split("/api/")[0] + "/api"
    return (f"the Prefect server at {server} refused the credentials (401 Unauthorized): set "
            "PREFECT_API_AUTH_STRING to the server's PREFECT_SERVER_API_AUTH_STRING "
            "(USER:PASSWORD; see docs/security.md)")


class OneLineErrors:
    """Mixed into click commands: the project's errors and a 401 from the Prefect server become
    `Error: ...` and an exit code instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except OcrPipelineError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(error.exit_code)
        except httpx.HTTPStatusError as error:
            if error.response.status_code != UNAUTHORIZED:
                raise
            click.echo(f"Error: {unauthorized_message(error)}", err=True)
            ctx.exit(ConfigError.exit_code)


class CliGroup(OneLineErrors, click.Group):
    """The `ocr-pipeline` group."""


class CliCommand(OneLineErrors, click.Command):
    """A command that also runs on its own (`python -m deployments.serve`)."""
