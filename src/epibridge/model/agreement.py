"""A data-sharing agreement: what one country may release, to whom, how coarse and how safe.

Agreements are TOML files (``docs/sharing-agreements.md``); ``epibridge.agreements``
loads and checks them and builds these frozen values. The protect stage enforces them;
nothing here reads files or clocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from epibridge.model.errors import EpibridgeError, KeyedFileError

DATASETS = ("counts", "cases", "reporting", "denominators")
#: Datasets about people, each of which an agreement may allow alone; the others (reports
#: expected and received, populations) go with either.
CASE_DATASETS = ("counts", "cases")
RESOLUTIONS = ("day", "week", "month", "quarter", "year")
BUDGET_PERIODS = ("month", "quarter", "year")
#: Line-list fields an agreement may allow.
CASE_FIELDS = (
    "case_id",
    "admin1",
    "admin2",
    "admin3",
    "disease_detail",
    "date_onset",
    "date_diagnosis",
    "date_report",
    "sex",
    "age_years",
    "age_band",
    "classification",
    "outcome",
    "imported",
    "country_of_infection",
    "pathogen_detail",
    "source_file",
    "source_record",
)
#: Breakdowns and measures an aggregate release may carry besides cases per area, period
#: and disease.
COUNT_FIELDS = ("sex", "age_band", "deaths")
#: Quasi-identifiers the k-anonymity of a line list can be computed over.
QUASI_IDENTIFIERS = ("age_band", "sex", "area", "date_onset", "date_diagnosis", "date_report")


class AgreementError(KeyedFileError):
    """An agreement file is invalid: names the file, the key and, when known, the line."""


class Refusal(EpibridgeError):  # noqa: N818 (a refusal, not a failure)
    """The node refuses to release: nothing was written. Says why and what to change."""

    def __init__(self, reason: str, fix: str) -> None:
        self.reason = reason
        self.fix = fix
        super().__init__(f"release refused: {reason}\n  what to do: {fix}")


@dataclass(frozen=True)
class Privacy:
    """Differential privacy: noise of ``epsilon`` per release, ``budget`` per budget period."""

    epsilon: float
    budget: float
    budget_period: str = "year"


@dataclass(frozen=True)
class Embargo:
    """Data for a period may leave only ``days`` after the period ends, and, when
    ``after_publication`` is set, only once the nation has published it."""

    days: int = 0
    after_publication: bool = False


@dataclass(frozen=True)
class Agreement:
    id: str
    version: str
    title: str
    sender: str
    recipient: str
    sender_authority: str
    recipient_authority: str
    purposes: tuple[str, ...]
    legal_basis: str
    datasets: tuple[str, ...]
    diseases: tuple[str, ...]
    case_fields: tuple[str, ...]
    count_fields: tuple[str, ...]
    area_level: int
    time_resolution: str
    calendar: str
    age_bands: tuple[int, ...]
    k: int
    show_zeros: bool
    quasi_identifiers: tuple[str, ...]
    max_withheld: float
    privacy: Privacy | None
    record_linkage: bool
    embargo: Embargo
    retention_days: int
    onward_sharing: bool
    valid_from: date
    valid_to: date
    #: SHA-256 of the agreement's RFC 8785 canonical JSON form: what both parties sign.
    sha256: str
    source_path: str = ""

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"


@dataclass(frozen=True)
class Withheld:
    """One line of a release's "what was withheld" table: what, why, how many (never values)."""

    what: str
    why: str
    count: int
