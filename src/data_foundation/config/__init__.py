"""Reading source folders into a validated `Project` (`project`): the models of `sources.yaml` (`spec`, `dagster_meta`,
`columns`, with the field types of `base`), YAML with the line of every key (`yamlfile`), entries resolved and imported
safely (`entries`, `entry_kinds`, `import_probe`, `import_child`), the automation-condition registry
(`automation_conditions`), and `loading`, which validates a sources root in phases (`folders`, `resolution`,
`arguments`, `assembly`, `source_checks`), every problem collected by `problems.Problems` and worded by `messages`.
The same models, as the JSON Schema editors read: `json_schema`.
No dlt pipeline and no Dagster here.

Kept free of imports: the child process that imports users' modules first (`import_child`) loads this package.
"""
