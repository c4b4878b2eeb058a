"""The nouns of epibridge: schemas, errors and small frozen values (stdlib and pyarrow)."""
