"""The synthetic population: a deterministic, Kazakhstan-like registry of any size.

The facts (ages, family shapes, incomes, disability, schooling...) come from the columnar
generator in `familymap.synthetic`; this module gives every family and person an identity the
registry needs (ids, valid IINs, names, phones, language, IBANs), Kazakhstan's regional
population shares, and writes the result either as the import files of
`docs/import-format.md` or as column tables a loader can COPY into PostgreSQL.

Determinism: the population is made in fixed-size chunks of families, each from its own seed
derived from (seed, chunk number), so the same `--families N --seed S --as-of D` always gives
the same registry, and the national 6.2 million families never have to be in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from familymap.engine.dates import NEVER, NO_DATE
from familymap.engine.population import Population
from familymap.situation import AWARDS, EMPLOYMENT, REGIONS, ROLES
from familymap.synthetic import synthetic_population

CHUNK_FAMILIES = 250_000

# Share of the population by region, 2025 (Bureau of National Statistics, rounded; our model
# for the smaller regions). The order follows familymap.situation.REGIONS.
REGION_SHARES = np.array(
    [
        7.5,
        11.3,
        6.1,
        3.1,
        3.8,
        4.7,
        7.6,
        3.6,
        3.6,
        6.0,
        3.5,  # astana .. west_kazakhstan
        5.6,
        4.1,
        4.0,
        3.8,
        3.7,
        2.8,
        10.6,
        1.1,
        3.5,  # karaganda .. ulytau (padding to 20)
    ]
)[: len(REGIONS)]

# Chronic conditions dispensed against e-prescriptions under the outpatient drug programme
# (ICD-10): hypertension, type 2 diabetes, asthma, ischaemic heart disease, epilepsy.
CHRONIC_CODES = ("I10", "E11", "J45", "I25", "G40")

_KK_MALE = (
    "Нұрлан",
    "Ерлан",
    "Асқар",
    "Данияр",
    "Арман",
    "Бауыржан",
    "Серік",
    "Алихан",
    "Ержан",
    "Темірлан",
)
_KK_FEMALE = (
    "Айгерім",
    "Гүлнар",
    "Динара",
    "Аружан",
    "Мадина",
    "Сәуле",
    "Жанар",
    "Әсел",
    "Ақерке",
    "Томирис",
)
_RU_MALE = ("Александр", "Сергей", "Дмитрий", "Андрей", "Алексей", "Виктор", "Артём", "Игорь")
_RU_FEMALE = ("Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Анна", "Валентина", "Светлана")
_KK_SURNAMES = (
    "Жұмабаев",
    "Сейтқалиев",
    "Омаров",
    "Әбілов",
    "Қасымов",
    "Тоқтаров",
    "Байжанов",
    "Есенов",
)
_RU_SURNAMES = ("Иванов", "Петров", "Ким", "Смирнов", "Попов", "Волков", "Козлов", "Лебедев")
# Russian is the everyday language of about a third of families, more in the north and cities.
_RU_SHARE_BY_REGION = np.array(
    [
        0.35,
        0.45,
        0.15,
        0.35,
        0.5,
        0.3,
        0.2,
        0.1,
        0.5,
        0.15,
        0.2,
        0.3,
        0.55,
        0.6,
        0.05,
        0.1,
        0.55,
        0.6,
        0.05,
        0.3,
    ]
)[: len(REGIONS)]
_BANK_CODES = np.array([601, 722, 998, 965, 914, 551, 832])  # 3-digit bank codes in KZ IBANs


@dataclass(frozen=True, slots=True)
class RegistryChunk:
    """One chunk of the synthetic registry: facts as a Population plus identities."""

    population: Population
    family_ids: np.ndarray  # int64
    person_ids: np.ndarray  # int64
    iin: np.ndarray  # <U12
    last_name: np.ndarray
    first_name: np.ndarray
    patronymic: np.ndarray
    phone: pl.Series  # str or null
    language: np.ndarray  # <U2
    iban: pl.Series  # str or null
    school_id: np.ndarray  # object: str or None


def generate_registry(
    *, families: int, seed: int, as_of: date, chunk_families: int = CHUNK_FAMILIES
) -> Iterator[RegistryChunk]:
    """Yield the registry of `families` families in chunks; the same arguments, the same data."""
    if families < 0:
        raise ValueError("families must not be negative")
    next_person_id = 1
    serials = _SerialCounter()
    for chunk, start in enumerate(range(0, families, chunk_families)):
        n = min(chunk_families, families - start)
        rng = np.random.default_rng([seed, chunk])
        population = synthetic_population(n, int(rng.integers(2**31)), reference=as_of)
        population = _kazakhstan_like(population, rng)
        family_ids = np.arange(start + 1, start + n + 1, dtype=np.int64)
        person_ids = np.arange(
            next_person_id, next_person_id + population.n_persons, dtype=np.int64
        )
        next_person_id += population.n_persons
        ranks = serials.take(population.person.birth_date, population.person.is_female)
        yield _identities(population, family_ids, person_ids, ranks, rng)


class _SerialCounter:
    """How many IINs were issued so far per (birth day, sex): the next person's rank."""

    FIRST_DAY = -25_567  # 1900-01-01
    DAYS = 200 * 366

    def __init__(self) -> None:
        self.issued = np.zeros(self.DAYS * 2, dtype=np.int64)

    def take(self, birth_day: np.ndarray, female: np.ndarray) -> np.ndarray:
        """The rank of each person among those born the same day with the same sex."""
        key = (birth_day.astype(np.int64) - self.FIRST_DAY) * 2 + female
        if len(key) and (key.min() < 0 or key.max() >= len(self.issued)):
            raise ValueError("birth dates must fall within 1900..2099")
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        group_start = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        first_of_group = np.repeat(group_start, np.diff(np.r_[group_start, len(key)]))
        rank = np.empty(len(key), dtype=np.int64)
        rank[order] = np.arange(len(key)) - first_of_group + self.issued[sorted_key]
        self.issued += np.bincount(key, minlength=len(self.issued))
        return rank


def _kazakhstan_like(population: Population, rng: np.random.Generator) -> Population:
    """Regions by population share; and no source dates a fact after the person's death."""
    shares = REGION_SHARES / REGION_SHARES.sum()
    families = dict(population.family.items())
    families["region"] = rng.choice(len(REGIONS), population.n_families, p=shares).astype(np.int8)
    persons = dict(population.person.items())
    death = persons["date_of_death"]
    for name in ("job_lost_on", "disability_established_on"):
        persons[name] = np.where(persons[name] > death, death, persons[name]).astype(np.int32)
    return Population.from_arrays(persons=persons, families=families)


def _identities(
    population: Population,
    family_ids: np.ndarray,
    person_ids: np.ndarray,
    ranks: np.ndarray,
    rng: np.random.Generator,
) -> RegistryChunk:
    p, f = population.person, population.family
    n = population.n_persons
    family_row = p.family_index
    region = f.region[family_row]
    russian = rng.random(population.n_families)[family_row] < _RU_SHARE_BY_REGION[region]
    female = p.is_female

    first = np.empty(n, dtype=object)
    for is_ru, is_f, names in (
        (False, False, _KK_MALE),
        (False, True, _KK_FEMALE),
        (True, False, _RU_MALE),
        (True, True, _RU_FEMALE),
    ):
        rows = np.flatnonzero((russian == is_ru) & (female == is_f))
        first[rows] = np.array(names, dtype=object)[rng.integers(len(names), size=len(rows))]

    # One surname per family, in the feminine form for women (Kazakh -ов/-ев names too).
    family_ru = russian[population.family_start]
    surname_pick = rng.integers(8, size=population.n_families)
    base = np.where(
        family_ru, np.array(_RU_SURNAMES)[surname_pick], np.array(_KK_SURNAMES)[surname_pick]
    )[family_row]
    ends_ov = np.char.endswith(base.astype(str), "ов") | np.char.endswith(base.astype(str), "ев")
    last = np.where(female & ends_ov, np.char.add(base.astype(str), "а"), base.astype(str)).astype(
        object
    )

    father = np.where(
        russian,
        np.array(_RU_MALE)[rng.integers(len(_RU_MALE), size=n)],
        np.array(_KK_MALE)[rng.integers(len(_KK_MALE), size=n)],
    )
    suffix = np.where(russian, np.where(female, "овна", "ович"), np.where(female, "қызы", "ұлы"))
    patronymic = np.char.add(father.astype(str), suffix).astype(object)

    adult = p.birth_date <= (p.birth_date.max() - int(18 * 365.25))
    phone = (
        pl.Series(rng.integers(0, 10**9, size=n))
        .cast(pl.String)
        .str.zfill(9)
        .str.replace(r"^", "+77")
    )
    phone = phone.set(pl.Series(~adult), None)
    iban = _ibans(rng, n).set(pl.Series(~adult | (rng.random(n) > 0.8)), None)

    schools_per_region = 400
    school = np.where(
        p.school_grade > 0,
        np.char.add(
            np.char.add(np.array(REGIONS)[region], "-school-"),
            np.char.zfill((family_ids[family_row] % schools_per_region).astype(str), 3),
        ),
        "",
    ).astype(object)
    school[p.school_grade == 0] = None

    return RegistryChunk(
        population=population,
        family_ids=family_ids,
        person_ids=person_ids,
        iin=_iins(p.birth_date, female, ranks),
        last_name=last,
        first_name=first,
        patronymic=patronymic,
        phone=phone,
        language=np.where(russian, "ru", "kk"),
        iban=iban,
        school_id=school,
    )


# Generated serials stay below 9000: 9000..9999 are left for hand-made persons (the demo's
# story families, tests), so the two can never collide.
MAX_GENERATED_RANK = 3000


def _iins(birth_day: np.ndarray, female: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Valid, unique IINs: YYMMDD, the century-and-sex digit, a serial, the check digit.

    The serial is the person's rank among those born the same day with the same sex, times
    three, plus 0, 1 or 2: the first of the three that has a check digit is taken (one number
    in 121 has none), and the ranges of two ranks never overlap, so IINs stay unique.
    """
    if len(ranks) and ranks.max() >= MAX_GENERATED_RANK:
        raise ValueError("more than 3,000 persons born on one day with one sex")
    dates = birth_day.astype("datetime64[D]")
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (dates - dates.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    century = np.select([years < 1900, years < 2000], [1, 3], default=5) + female.astype(np.int64)
    head = np.stack(
        [(years // 10) % 10, years % 10, months // 10, months % 10, days // 10, days % 10, century],
        axis=1,
    )
    base_serial = ranks * 3
    weights_1 = np.arange(1, 12)
    weights_2 = np.array([3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2])
    result = np.zeros((len(birth_day), 12), dtype=np.int64)
    pending = np.ones(len(birth_day), dtype=bool)
    for offset in range(3):
        serial = base_serial + offset
        digits = np.concatenate(
            [
                head,
                np.stack(
                    [(serial // 1000) % 10, (serial // 100) % 10, (serial // 10) % 10, serial % 10],
                    axis=1,
                ),
            ],
            axis=1,
        )
        check = digits @ weights_1 % 11
        second = digits @ weights_2 % 11
        check = np.where(check == 10, second, check)
        ok = pending & (check != 10)
        result[ok, :11] = digits[ok]
        result[ok, 11] = check[ok]
        pending &= ~ok
    if pending.any():  # three misses in a row: about one in 1.8 million persons
        raise AssertionError("could not find a valid IIN serial")  # never seen; fail loudly
    as_bytes = np.ascontiguousarray((result + ord("0")).astype(np.uint8))
    return as_bytes.view("S12").ravel().astype("<U12")


def _ibans(rng: np.random.Generator, n: int) -> pl.Series:
    """Valid KZ IBANs (ISO 13616 mod-97 check digits) with numeric account numbers."""
    bank = _BANK_CODES[rng.integers(len(_BANK_CODES), size=n)]
    account = rng.integers(0, 10**13, size=n, dtype=np.int64)
    # mod 97 of the digits "bank(3) account(13) K(20) Z(35) 00", folded left to right.
    remainder = bank % 97
    remainder = (remainder * (10**13 % 97) + account % 97) % 97
    remainder = (remainder * 10**6 + 203500) % 97
    check = 98 - remainder

    def digits(values: np.ndarray, width: int) -> pl.Series:
        return pl.Series(values).cast(pl.String).str.zfill(width)

    return "KZ" + digits(check, 2) + digits(bank, 3) + digits(account, 13)


def _date_or_none(days: np.ndarray) -> pl.Series:
    values = days.astype(np.int64)
    missing = (values == NO_DATE) | (values == NEVER)
    return pl.Series(np.where(missing, 0, values)).cast(pl.Date).set(pl.Series(missing), None)


def person_frame(chunk: RegistryChunk) -> pl.DataFrame:
    """The persons of a chunk with every registry column (the `persons` table's shape)."""
    p = chunk.population.person
    return pl.DataFrame(
        {
            "id": chunk.person_ids,
            "family_id": chunk.family_ids[p.family_index],
            "iin": chunk.iin,
            "role": np.array(ROLES)[p.role],
            "last_name": chunk.last_name.astype(str),
            "first_name": chunk.first_name.astype(str),
            "patronymic": chunk.patronymic.astype(str),
            "birth_date": pl.Series(p.birth_date.astype(np.int64)).cast(pl.Date),
            "sex": np.where(p.is_female, "F", "M"),
            "phone": chunk.phone,
            "language": chunk.language,
            "iban": chunk.iban,
            "date_of_death": _date_or_none(p.date_of_death),
            "monthly_income_tiyn": p.monthly_income.astype(np.int64),
            "contribution_months": p.contribution_months.astype(np.int16),
            "employment": np.array(EMPLOYMENT)[p.employment],
            "job_lost_on": _date_or_none(p.job_lost_on),
            "registered_unemployed": p.registered_unemployed,
            "disability_group": pl.Series(p.disability_group.astype(np.int16)).replace(0, None),
            "disability_child": p.disability_child,
            "disability_established_on": _date_or_none(p.disability_established_on),
            "capacity_loss_pct": p.capacity_loss_pct.astype(np.int16),
            "full_time_student": p.full_time_student,
            "school_grade": pl.Series(p.school_grade.astype(np.int16)).replace(0, None),
            "school_id": pl.Series(chunk.school_id.tolist(), dtype=pl.String),
            "kindergarten": p.kindergarten,
            "insured": p.insured,
            "polyclinic_attached": p.polyclinic_attached,
            "chronic_conditions": _chronic_lists(p.chronic_count),
            "award": pl.Series(np.array(AWARDS, dtype=object)[p.award].tolist(), dtype=pl.String),
            "kandas_until": _date_or_none(p.kandas_until),
        }
    )


def _chronic_lists(counts: np.ndarray) -> pl.Series:
    """The first `count` codes of CHRONIC_CODES for every person, as a list column."""
    frame = pl.DataFrame({"k": counts.astype(np.int64)})
    return (
        frame.select(pl.lit(list(CHRONIC_CODES), dtype=pl.List(pl.String)).list.head(pl.col("k")))
        .to_series()
        .alias("chronic_conditions")
    )


def family_frame(chunk: RegistryChunk) -> pl.DataFrame:
    """The families of a chunk (the `families` table's shape)."""
    f = chunk.population.family
    return pl.DataFrame(
        {
            "id": chunk.family_ids,
            "region": np.array(REGIONS)[f.region],
            "housing_owned": f.housing_owned,
            "area_m2": f.area_m2.astype(np.int32),
            "rooms": f.rooms.astype(np.int16),
            "in_social_housing_queue": f.housing_queue,
        }
    )


# Which facts go in which import file (docs/import-format.md), and which persons have a line:
# a file carries a record only where its source system knows something.
_FACT_FILES: dict[str, tuple[dict[str, str], pl.Expr | None]] = {
    "income": ({"monthly_income_tiyn": "monthly_income_tiyn", "contribution_months": "contribution_months"}, None),
    "employment": (
        {"status": "employment", "job_lost_on": "job_lost_on", "registered_unemployed": "registered_unemployed"},
        None,
    ),
    "disability": (
        {"group": "disability_group", "child": "disability_child",
         "established_on": "disability_established_on", "capacity_loss_pct": "capacity_loss_pct"},
        pl.col("disability_group").is_not_null()
        | pl.col("disability_child")
        | (pl.col("capacity_loss_pct") > 0),
    ),
    "education": (
        {"school_id": "school_id", "school_grade": "school_grade", "kindergarten": "kindergarten",
         "full_time_student": "full_time_student"},
        pl.col("school_grade").is_not_null() | pl.col("kindergarten") | pl.col("full_time_student"),
    ),
    "health": (
        {"polyclinic_attached": "polyclinic_attached", "insured": "insured", "chronic_conditions": "chronic_conditions"},
        None,
    ),
    "awards": ({"award": "award"}, pl.col("award").is_not_null()),
    "kandas": ({"kandas_until": "kandas_until"}, pl.col("kandas_until").is_not_null()),
}  # fmt: skip
_PERSON_FIELDS = (
    "iin", "family_id", "role", "last_name", "first_name", "patronymic", "birth_date", "sex",
    "phone", "language", "iban", "date_of_death",
)  # fmt: skip


def import_frames(chunk: RegistryChunk, *, seed: int, as_of: date) -> dict[str, pl.DataFrame]:
    """The chunk as import records, one frame per file (kind), in import-format shape."""
    persons = person_frame(chunk)
    families = family_frame(chunk)
    # A source cannot know a fact about a person after their death: such records are dated then.
    fact_date = pl.min_horizontal(pl.col("date_of_death").fill_null(as_of), pl.lit(as_of))
    frames = {
        "families": families.select(
            pl.format("gen{}-family-{}", pl.lit(seed), pl.col("id")).alias("record_id"),
            pl.lit(as_of).alias("as_of"),
            pl.col("id").alias("family_id"),
            "region",
        ),
        "persons": persons.select(
            pl.format("gen{}-person-{}", pl.lit(seed), pl.col("id")).alias("record_id"),
            pl.lit(as_of).alias("as_of"),
            pl.col("id").alias("person_id"),
            *_PERSON_FIELDS,
        ),
        "housing": families.select(
            pl.format("gen{}-housing-{}", pl.lit(seed), pl.col("id")).alias("record_id"),
            pl.lit(as_of).alias("as_of"),
            pl.col("id").alias("family_id"),
            pl.col("housing_owned").alias("owned"),
            "area_m2",
            "rooms",
            "in_social_housing_queue",
        ),
    }
    for kind, (fields, keep) in _FACT_FILES.items():
        rows = persons if keep is None else persons.filter(keep)
        frames[kind] = rows.select(
            pl.format("gen{}-{}-{}", pl.lit(seed), pl.lit(kind), pl.col("id")).alias("record_id"),
            fact_date.alias("as_of"),
            "iin",
            *(pl.col(column).alias(name) for name, column in fields.items()),
        )
    return frames


IMPORT_ORDER = ("families", "persons", "housing", *_FACT_FILES)


def write_import_files(
    *,
    directory: Path,
    families: int,
    seed: int,
    as_of: date,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write the synthetic registry as import files (`<kind>.jsonl`); returns lines per file."""
    directory.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys((f"{kind}.jsonl" for kind in IMPORT_ORDER), 0)
    handles = {name: (directory / name).open("wb") for name in counts}
    try:
        done = 0
        for chunk in generate_registry(families=families, seed=seed, as_of=as_of):
            for kind, frame in import_frames(chunk, seed=seed, as_of=as_of).items():
                frame.write_ndjson(handles[f"{kind}.jsonl"])
                counts[f"{kind}.jsonl"] += frame.height
            done += chunk.population.n_families
            if progress:
                progress(done, families)
    finally:
        for handle in handles.values():
            handle.close()
    return counts
