"""The nouns of epibridge: schemas, errors and small frozen values. Standard library and pyarrow only."""
