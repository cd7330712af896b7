"""The service layer: `service.api` (JSON API + staff web page, static files in `service/static/`) and
`service.cli` (the `chainmatch` command line). It sits above `evaluation` and `matcher`."""
