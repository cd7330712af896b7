"""The JSON API and the staff web page (FastAPI).

- `app`: the application factory (`create_app`), static page and middleware wiring;
- `deps`: the service state (engine, store, refresher) and authentication dependencies;
- `routes/`: one router module per resource (catalogue, regions, recommendations, enterprises, leads, exports, ops);
- `schemas`: request/response models; `security`: API keys; `ratelimit`: token buckets;
- `refresher`: follows the store's change feed into the in-memory and saved indexes;
- `observability`: request ids, JSON logs, Prometheus metrics; `export`: shortlist CSV/XLSX.

The page's files are in `service/static/`.
"""

from __future__ import annotations

from service.api.app import create_app

__all__ = ["create_app"]
