"""The dbt project downstream of the raw datasets: its settings in foundation.toml, the `sources.yml` generated from
the spec, the environment that points dbt at a target's datasets, and running dbt. Dagster's side is
`data_foundation.dagster.dbt_assets`."""
