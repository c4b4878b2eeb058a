"""Default spellings for the model's small vocabularies, in the languages of the region.

A profile's own ``codes`` replace these for a field; these cover what national exports
commonly write so that most profiles need no code map for sex, classification, outcome
or the imported flag.
"""

from __future__ import annotations

SEX = {
    "M": "M",
    "MALE": "M",
    "MASCULINO": "M",
    "HOMBRE": "M",
    "H": "M",
    "NAM": "M",
    "1": "M",
    "F": "F",
    "FEMALE": "F",
    "FEMENINO": "F",
    "MUJER": "F",
    "NU": "F",
    "NỮ": "F",
    "2": "F",
    "U": "U",
    "UNKNOWN": "U",
    "OTHER": "U",
    "O": "U",
    "NS": "U",
    "9": "U",
    "DESCONOCIDO": "U",
    "NONE": "U",
}
CLASSIFICATION = {
    "SUSPECTED": "suspected",
    "SUSPECT": "suspected",
    "SOSPECHOSO": "suspected",
    "PROBABLE": "probable",
    "CONFIRMED": "confirmed",
    "CONFIRMADO": "confirmed",
    "LAB-CONFIRMED": "confirmed",
    "PROVISIONAL": "probable",
    "UNCONFIRMED": "suspected",
    "DIFFERENTIAL": "suspected",
}
OUTCOME = {
    "ALIVE": "alive",
    "RECOVERED": "alive",
    "VIVO": "alive",
    "DEAD": "dead",
    "DIED": "dead",
    "DECEASED": "dead",
    "FALLECIDO": "dead",
    "MUERTO": "dead",
    "TRUE": "dead",
    "FALSE": "alive",
    "UNKNOWN": "unknown",
}
YES_NO = {
    "Y": "true",
    "YES": "true",
    "TRUE": "true",
    "1": "true",
    "SI": "true",
    "SÍ": "true",
    "IMPORTED": "true",
    "N": "false",
    "NO": "false",
    "FALSE": "false",
    "0": "false",
    "LOCAL": "false",
    "INDIGENOUS": "false",
}
DEFAULTS = {"sex": SEX, "classification": CLASSIFICATION, "outcome": OUTCOME, "imported": YES_NO}
