"""The application: the `wedsync` command line and the wiring of each process (settings in,
the product's parts built and run). The only package that imports `connectors` from
`streams`, and the only one that imports `streams.dev` (for the commands that are for
development: demo, broker, fake, `--dev-credentials`, `WEDSYNC_BROKER`)."""
