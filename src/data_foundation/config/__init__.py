"""Reading source folders: the `sources.yaml` models (`spec`), YAML with positions (`yamlfile`), entries resolved and
imported safely (`entries`, `import_probe`), and `loading`, which turns a sources root into a validated `Project` with
every problem found. No dlt pipeline and no Dagster here.

Kept free of imports: the child process that imports users' modules first (`import_child`) loads this package.
"""
