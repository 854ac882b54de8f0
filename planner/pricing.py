"""Prices per accelerator: on-demand, reserved (1-year / 3-year), spot, and owned (on-prem) hardware.

Three sources, later ones overriding earlier ones field by field:

1. the shipped database (``hardware_db/*.yaml``: ``price.usd_per_gpu_hour`` and, where a source
   exists, ``price.reserved_1y_usd_per_gpu_hour``, ``price.reserved_3y_usd_per_gpu_hour``,
   ``price.spot_usd_per_gpu_hour``, each with the price block's source and date);
2. a user price file (``pricing.file``: YAML ``{currency, date, source, prices: {ACC: ...}}``);
3. the scenario's ``prices:`` (``{ACC: 2.5}`` is the on-demand $/GPU-hour, as before, or a mapping).

A mapping entry takes ``on_demand, reserved_1y, reserved_3y, spot, spot_interruption,
capex_per_gpu, amortise_years, source, date``. All prices are per GPU-hour in ``pricing.currency``.

Owned hardware (``capex_per_gpu`` given, or an on-demand price of 0) costs, per GPU-hour,

    capex_per_gpu / (amortise_years · 8760 h)  +  P(u)/1000 · PUE · price_per_kwh

with P(u) = P_idle + u·(TDP − P_idle) at the plan's target utilisation u (``planner.energy``): a
planning assumption, as a day's load is not known when the price is set. Cloud prices include power.
A price of 0 is accepted only for owned hardware with a power price (``pricing.price_per_kwh``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from planner.checks import fraction, known_keys, mapping, positive
from planner.energy import DEFAULT_IDLE_FRACTION, HOURS_PER_YEAR, energy_cost_per_hour, idle_watts, power_w
from planner.errors import InputError

MAX_PRICE = 10_000.0  # per GPU-hour
MAX_CAPEX = 10_000_000.0  # per GPU
TERMS = ("1y", "3y")
ENTRY_KEYS = ("on_demand", "reserved_1y", "reserved_3y", "spot", "spot_interruption", "capex_per_gpu",
              "amortise_years", "source", "date")
BLOCK_KEYS = ("currency", "file", "reserved_term", "price_per_kwh", "pue", "idle_fraction")
SHIPPED_TIER_KEYS = {"reserved_1y": "reserved_1y_usd_per_gpu_hour", "reserved_3y": "reserved_3y_usd_per_gpu_hour",
                     "spot": "spot_usd_per_gpu_hour"}


@dataclass(frozen=True)
class PriceEntry:
    """One accelerator's prices as given (None: not given here)."""

    on_demand: float | None = None
    reserved_1y: float | None = None
    reserved_3y: float | None = None
    spot: float | None = None
    spot_interruption: float | None = None
    capex_per_gpu: float | None = None
    amortise_years: float | None = None
    source: str = ""
    date: str = ""

    def over(self, base: PriceEntry) -> PriceEntry:
        """This entry's fields laid over ``base``'s."""
        return PriceEntry(**{k: getattr(self, k) if getattr(self, k) not in (None, "") else getattr(base, k)
                             for k in ENTRY_KEYS})


@dataclass(frozen=True)
class Pricing:
    """The scenario's price settings: entries by accelerator name as written, plus the block."""

    entries: dict[str, PriceEntry] = field(default_factory=dict)
    currency: str = "USD"
    reserved_term: str = "1y"
    price_per_kwh: float | None = None
    pue: float = 1.0
    idle_fraction: float = DEFAULT_IDLE_FRACTION
    file: str = ""
    file_source: str = ""
    file_date: str = ""


@dataclass(frozen=True)
class Tiers:
    """Per-GPU-hour prices of one accelerator for planning (None: that tier is not offered).

    ``fixed``: the tier bought for the whole day (owned when ``owned``, else reserved at the term);
    ``spot_interruption``: the share of spot instances lost at any time (None: spot not usable)."""

    accelerator: str
    on_demand: float | None
    fixed: float | None
    fixed_kind: str
    spot: float | None
    spot_interruption: float | None
    owned: bool
    source: str
    date: str

    @property
    def plan_price(self) -> float:
        """The price a single-period plan uses: owned hardware's cost, else on-demand."""
        if self.owned and self.fixed is not None:
            return self.fixed
        return self.on_demand if self.on_demand is not None else (self.fixed or 0.0)


def _price(v: Any, field_: str, where: str, allow_zero: bool = False) -> float:
    return positive(v, field_, where, allow_zero=allow_zero, upper=MAX_PRICE)


def parse_entry(raw: Any, field_: str, where: str) -> PriceEntry:
    """``2.5`` (on-demand per GPU-hour; 0 for owned hardware) or a mapping of ENTRY_KEYS."""
    if not isinstance(raw, dict):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise InputError(field_, "a $/GPU-hour or a mapping of on_demand, reserved_1y, reserved_3y, spot, "
                             "spot_interruption, capex_per_gpu, amortise_years", raw, where=where)
        return PriceEntry(on_demand=_price(raw, field_, where, allow_zero=True))
    known_keys(raw, ENTRY_KEYS, where, f"{field_}.")
    kw: dict[str, Any] = {}
    for k in ("on_demand", "reserved_1y", "reserved_3y", "spot"):
        if raw.get(k) is not None:
            kw[k] = _price(raw[k], f"{field_}.{k}", where, allow_zero=k == "on_demand")
    if raw.get("spot_interruption") is not None:
        q = positive(raw["spot_interruption"], f"{field_}.spot_interruption", where, allow_zero=True)
        if q >= 1:
            raise InputError(f"{field_}.spot_interruption", "a share of spot instances lost in [0, 1)", q, where=where)
        kw["spot_interruption"] = q
    if raw.get("capex_per_gpu") is not None:
        kw["capex_per_gpu"] = positive(raw["capex_per_gpu"], f"{field_}.capex_per_gpu", where, allow_zero=True,
                                       upper=MAX_CAPEX)
    if raw.get("amortise_years") is not None:
        kw["amortise_years"] = positive(raw["amortise_years"], f"{field_}.amortise_years", where, upper=30)
    for k in ("source", "date"):
        if raw.get(k) is not None:
            kw[k] = str(raw[k])[:400]
    return PriceEntry(**kw)


def parse_pricing(prices_raw: Any, block_raw: Any, where: str, base: Path) -> Pricing:
    """The scenario's ``prices:`` and ``pricing:`` together (see the module docstring)."""
    from planner._yaml import load_yaml

    block = mapping(block_raw, "pricing", where) if block_raw is not None else {}
    known_keys(block, BLOCK_KEYS, where, "pricing.")
    entries: dict[str, PriceEntry] = {}
    file_txt = source = date = ""
    currency = None
    if block.get("file") is not None:
        path = Path(str(block["file"]))
        path = path if path.is_absolute() else base / path
        doc = mapping(load_yaml(path, "price file"), "pricing.file", str(path))
        known_keys(doc, ("currency", "date", "source", "prices"), str(path))
        for k, v in mapping(doc.get("prices"), "prices", str(path)).items():
            entries[str(k)] = parse_entry(v, f"prices.{k}", str(path))
        file_txt, source, date = str(path), str(doc.get("source") or "")[:400], str(doc.get("date") or "")[:40]
        currency = doc.get("currency")
        entries = {k: e if e.source else replace(e, source=source or f"price file {path.name}", date=e.date or date)
                   for k, e in entries.items()}
    for k, v in mapping(prices_raw, "prices", where).items():
        e = parse_entry(v, f"prices.{k}", where)
        e = replace(e, source=e.source or "scenario prices")
        entries[str(k)] = e.over(entries[str(k)]) if str(k) in entries else e
    cur = block.get("currency", currency) or "USD"
    if not isinstance(cur, str) or not (1 <= len(cur) <= 8) or not cur.strip().isalpha():
        raise InputError("pricing.currency", "a currency code such as USD, EUR, CNY", cur, where=where)
    term = block.get("reserved_term", "1y")
    if term not in TERMS:
        raise InputError("pricing.reserved_term", "1y or 3y", term, where=where)
    kwh = block.get("price_per_kwh")
    kwh = None if kwh is None else positive(kwh, "pricing.price_per_kwh", where, allow_zero=True, upper=100)
    pue = positive(block.get("pue", 1.0), "pricing.pue", where, upper=5)
    if pue < 1:
        raise InputError("pricing.pue", "a power usage effectiveness >= 1 (facility / IT power)", pue, where=where)
    idle = fraction(block.get("idle_fraction", DEFAULT_IDLE_FRACTION), "pricing.idle_fraction", where)
    for k, e in entries.items():
        owned = e.capex_per_gpu is not None or e.on_demand == 0
        if owned and kwh is None:
            raise InputError(f"prices.{k}", "a positive price, or owned hardware (a price of 0 or capex_per_gpu) "
                             "with pricing.price_per_kwh set, so that power is paid for", 0, where=where)
    return Pricing(entries, cur.strip().upper(), term, kwh, pue, idle, file_txt, source, date)


def shipped_entry(acc: Any) -> PriceEntry:
    """The database's prices of ``acc`` (an ``Accelerator``): on-demand and any sourced tiers."""
    tiers = dict(getattr(acc, "price_tiers", {}) or {})
    return PriceEntry(on_demand=acc.price_per_hour, reserved_1y=tiers.get("reserved_1y"),
                      reserved_3y=tiers.get("reserved_3y"), spot=tiers.get("spot"),
                      source=acc.price_source, date=acc.price_date)


def tiers_of(acc: Any, entry: PriceEntry | None, pricing: Pricing, utilisation: float) -> Tiers:
    """Planning prices of ``acc`` with the scenario's ``entry`` over the shipped ones (module docstring)."""
    shipped = shipped_entry(acc)
    e = entry.over(shipped) if entry is not None else shipped
    if entry is not None and entry.source != shipped.source:
        e = replace(e, source=f"{entry.source}; other tiers shipped ({shipped.date}): {shipped.source[:160]}")
    owned = entry is not None and (entry.capex_per_gpu is not None or entry.on_demand == 0)
    if owned:
        years = e.amortise_years or 4.0
        capex_h = (e.capex_per_gpu or 0.0) / (years * HOURS_PER_YEAR)
        watts = power_w(acc.tdp_w, utilisation, idle_watts(acc.tdp_w, pricing.idle_fraction))
        fixed = capex_h + energy_cost_per_hour(watts, pricing.price_per_kwh or 0.0, pricing.pue)
        on_demand = entry.on_demand if entry.on_demand not in (None, 0) else None
        return Tiers(acc.id, on_demand, fixed, "owned", None, None, True, e.source, e.date)
    reserved = e.reserved_1y if pricing.reserved_term == "1y" else e.reserved_3y
    spot_ok = e.spot is not None and e.spot_interruption is not None
    kind = f"reserved {pricing.reserved_term}" if reserved is not None else "no reserved price"
    return Tiers(acc.id, e.on_demand, reserved, kind, e.spot if spot_ok else None,
                 e.spot_interruption if spot_ok else None, False, e.source, e.date)


def owned_note(pricing: Pricing) -> str:
    """What an owned accelerator's price contains, for the plan's notes."""
    return (f"owned hardware: capex amortised + power at {pricing.price_per_kwh:g} {pricing.currency}/kWh, "
            f"PUE {pricing.pue:g}, at the target utilisation")
