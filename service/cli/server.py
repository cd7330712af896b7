"""``chainmatch serve`` (the API and the staff page under uvicorn) and ``chainmatch apikey create|list|revoke``.

First start with an empty data dir: the embedded demo (catalogue, regions, demo enterprises) is loaded into the
store and indexed, and — when no API key exists yet — a key for tenant ``demo`` is created and printed once with
the staff page URL (``http://HOST:PORT/#key=…``: the page stores the key in the browser's localStorage and removes
it from the address bar; the fragment never reaches the server or its logs).
"""

from __future__ import annotations

import logging
import os

import typer

from service.cli.common import handle_errors

logger = logging.getLogger(__name__)

DEMO_TENANT = "demo"

apikey_app = typer.Typer(
    help="API keys: each bound to one tenant; stored hashed, shown once.", no_args_is_help=True
)


def _store():
    from matcher.settings import get_settings
    from matcher.store.store import Store

    return Store.from_settings(get_settings())


@apikey_app.command("create")
@handle_errors
def apikey_create(
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant the key acts for (letters, digits, _.-)."),
    name: str = typer.Option("", "--name", "-n", help="A label, e.g. the CRM or the person."),
) -> None:
    """Create a key and print it once (it cannot be shown again)."""
    from service.api.security import create_api_key

    with _store() as store:
        meta, key = create_api_key(store, tenant, name)
    typer.echo(f"API key for tenant '{meta.tenant}' (id {meta.id}) — shown once, store it now:")
    typer.echo(key)


@apikey_app.command("list")
@handle_errors
def apikey_list(
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Only this tenant's keys."),
) -> None:
    """List keys (ids and metadata, never secrets)."""
    from service.api.security import list_api_keys

    with _store() as store:
        keys = list_api_keys(store, tenant)
    if not keys:
        typer.echo("no API keys")
        return
    typer.echo(f"{'id':<14}{'tenant':<18}{'state':<10}{'created':<22}{'last used':<22}name")
    for k in keys:
        state = "active" if k.active else "revoked"
        last = k.last_used_at.strftime("%Y-%m-%d %H:%M") if k.last_used_at else "-"
        typer.echo(
            f"{k.id:<14}{k.tenant:<18}{state:<10}{k.created_at:%Y-%m-%d %H:%M}{'':<6}{last:<22}{k.name}"
        )


@apikey_app.command("revoke")
@handle_errors
def apikey_revoke(
    key_id: str = typer.Argument(..., help="The key id (see `chainmatch apikey list`)."),
) -> None:
    """Revoke a key: it stops working at once."""
    from service.api.security import revoke_api_key

    with _store() as store:
        meta = revoke_api_key(store, key_id)
    typer.echo(f"revoked API key {meta.id} (tenant {meta.tenant})")


def ensure_demo_key(store) -> str | None:
    """A new key for tenant ``demo`` when no active key exists at all (first start); None otherwise."""
    from service.api.security import count_active_keys, create_api_key

    if count_active_keys(store) > 0:
        return None
    _, key = create_api_key(store, DEMO_TENANT, "demo (staff page)")
    logger.info("no API key yet: created one for tenant '%s' for the staff page", DEMO_TENANT)
    return key


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``apikey`` to the CLI."""

    @app.command("serve")
    @handle_errors
    def serve(
        host: str | None = typer.Option(None, "--host", help="Bind address (default: settings, 127.0.0.1)."),
        port: int | None = typer.Option(None, "--port", "-p", help="Port (default: settings, 8000)."),
        demo_key: bool = typer.Option(
            True,
            "--demo-key/--no-demo-key",
            help="Create and print a key for tenant 'demo' when no key exists.",
        ),
        json_logs: bool = typer.Option(True, "--json-logs/--plain-logs", help="Structured JSON log lines."),
        workers: int = typer.Option(
            1, "--workers", min=1, max=64,
            help="Server processes on one port; each holds its own index and follows the others' writes "
            "through the store's change log (memory grows with each).",
        ),
    ) -> None:
        """Run the JSON API and the staff web page (uvicorn)."""
        import uvicorn

        from matcher.settings import get_settings
        from service.api.app import create_app
        from service.api.observability import configure_json_logging

        if json_logs:
            configure_json_logging(logging.INFO)
        settings = get_settings()
        if host:
            settings = settings.model_copy(update={"host": host})
        if port:
            settings = settings.model_copy(update={"port": port})
        if workers > 1:
            from matcher.store.store import Store

            store = Store.from_settings(settings)
        else:
            app_ = create_app(settings)
            store = app_.state.service.store
        url = (
            f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{settings.port}/"
        )
        key = ensure_demo_key(store) if demo_key else None
        typer.echo(f"ChainMatch staff page: {url}   (API docs: {url}docs)")
        if key:
            typer.echo(f"demo API key for tenant '{DEMO_TENANT}' (shown once): {key}")
            typer.echo(f"open the page with the key: {url}#key={key}")
        if workers > 1:
            store.close()
            os.environ["CHAINMATCH_JSON_LOGS"] = "1" if json_logs else "0"  # read by each worker's factory
            # a worker busy ranking on a loaded box can miss uvicorn's 5 s health ping and be restarted
            # (dropping its connections and its fitted index): give it a minute
            uvicorn.run("service.api.app:create_worker_app", factory=True, workers=workers, host=settings.host,
                        port=settings.port, log_config=None, proxy_headers=False,
                        timeout_worker_healthcheck=60)  # fmt: skip
            return
        uvicorn.run(app_, host=settings.host, port=settings.port, log_config=None, proxy_headers=False,
                    timeout_graceful_shutdown=3)
        if not getattr(app_.state.service, "closed_cleanly", True):
            # worker threads still busy (a catch-up): the interpreter would wait for them at exit; the data is safe
            logging.getLogger(__name__).warning("exiting without waiting for the index workers")
            os._exit(0)

    app.add_typer(apikey_app, name="apikey")
