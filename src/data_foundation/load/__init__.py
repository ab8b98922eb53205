"""Loading with dlt: a validated `Project`'s sources become dlt sources (`building`, with `pii` masking), run into a
target (`targets`, `destinations`) inside a guarded session (`session`), with rows counted and reconciled
(`running`, `reconcile`). No YAML is read and no Dagster imported here."""
