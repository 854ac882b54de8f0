"""Accelerators: the ``Accelerator`` value and the loader of ``hardware_db/*.yaml``.

Files state figures in the units vendors quote (GiB, TB/s, dense TFLOP/s, GB/s); the
loader converts them to SI once (bytes, bytes/s, FLOP/s) so nothing downstream converts.
Every figure must carry a source under ``sources:``; a missing or ill-typed field fails
with the file name, the field and what was expected. Users add accelerators by pointing
at their own YAML file or folder (``--hardware-path`` or ``$PLANNER_HARDWARE_PATH``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from planner._yaml import bounded, integer, load_yaml, text
from planner.errors import InputError, PlannerError
from planner.names import build_index, fold, resolve
from planner.outputs import same_file
from planner.paths import data_dir

GIB = 2**30
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")
FAMILIES = (
    "ampere", "ada", "hopper", "blackwell", "cdna2", "cdna3", "cdna4", "ascend-a2", "ascend-a3", "gaudi3", "xe2",
)
VENDORS = ("NVIDIA", "AMD", "Huawei", "Intel", "Other")
_FIGURES = ("memory_gib", "mem_bw_tb_per_s", "peak_tflops_dense", "scaleup", "scaleout_bw_gb_per_s", "tdp_w")
# Physical ranges every figure must lie in (the units of the YAML file): wide enough for any
# accelerator on a roadmap, narrow enough that a typo (1e308, a negative, GB for TB) fails on load.
RANGES: dict[str, tuple[float, float, str]] = {
    "memory_gib": (1, 16384, "GiB"),
    "mem_bw_tb_per_s": (0.01, 1000, "TB/s"),
    "peak_tflops_dense": (0.1, 1e6, "dense TFLOP/s"),
    "scaleup.bw_gb_per_s": (0.1, 1e5, "GB/s per direction"),
    "scaleup.domain_size": (1, 100_000, "accelerators"),
    "scaleout_bw_gb_per_s": (0.1, 1e5, "GB/s"),
    "tdp_w": (1, 100_000, "W"),
    "price.usd_per_gpu_hour": (0.001, 10_000, "$/GPU-hour"),
}
MAX_ALIASES = 64
_KEYS = {
    "id", "name", "vendor", "family", "aliases", "price", "sources", "notes", *_FIGURES,
}


@dataclass(frozen=True)
class Accelerator:
    """One accelerator (GPU/NPU) as a package the scheduler counts as one device.

    All figures are SI: bytes, bytes/s (one direction for links), FLOP/s (dense), watts,
    US dollars per device-hour.
    """

    id: str
    name: str
    vendor: str
    family: str
    memory_bytes: float
    mem_bw_bytes_per_s: float
    peak_flops: Mapping[str, float]
    scaleup_link: str
    scaleup_bw_bytes_per_s: float
    scaleup_domain: int
    scaleout_bw_bytes_per_s: float
    tdp_w: float
    price_per_hour: float
    price_date: str
    price_source: str
    aliases: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""
    path: str = ""
    price_tiers: Mapping[str, float] = field(default_factory=dict)
    """Other sourced per-GPU-hour prices from the price block (reserved_1y, reserved_3y, spot); absent
    when no source was found (``planner.pricing``)."""
    price_basis: str = "rental"
    """What ``price_per_hour`` is: ``rental`` (an on-demand cloud price), ``purchase`` (a purchase price
    spread over years of use, hardware only: no power, hosting or margin) or ``scenario`` (the scenario's
    own price, ``with_price``). Plans over the whole database
    leave ``purchase``-priced devices out unless the scenario prices them (``planning.accelerators_of``)."""
    scaleup_link_kind: str = ""
    """Kind of scale-up fabric (``scaleup.link_kind``, e.g. ``nvlink4-hgx``): keys the measured
    all-reduce curves of ``planner/data/allreduce_curves.csv`` (``planner.perf.allreduce_curves``);
    empty, or a kind without curves, keeps the alpha-beta model."""

    @property
    def watts_per_tflop(self) -> float:
        """Board power per dense 16-bit TFLOP/s (``tdp_w`` / bf16 or fp16 peak): what sets how far the
        tensor clock falls under a compute-bound load (``Efficiency.compute_clock``)."""
        base = self.peak_flops.get("bf16") or self.peak_flops.get("fp16") or 0.0
        return self.tdp_w / (base / 1e12) if base > 0 and self.tdp_w > 0 else 0.0

    def supports(self, dtype: str) -> bool:
        """True when the matrix units run ``dtype`` natively."""
        return dtype in self.peak_flops

    def peak_flops_for(self, dtype: str) -> float:
        """Dense peak FLOP/s of ``dtype``; raises when the hardware lacks it."""
        try:
            return self.peak_flops[dtype]
        except KeyError:
            raise PlannerError(
                f"{self.id} has no {dtype} matrix units (has: {', '.join(self.peak_flops)})"
            ) from None

    def with_price(self, price_per_hour: float, source: str = "user override") -> Accelerator:
        """A copy with another price (scenario price overrides)."""
        from dataclasses import replace

        return replace(self, price_per_hour=price_per_hour, price_source=source, price_basis="scenario")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (SI units), the schema of ``planner hardware list --json``."""
        return {
            "id": self.id,
            "name": self.name,
            "vendor": self.vendor,
            "family": self.family,
            "aliases": list(self.aliases),
            "memory_bytes": self.memory_bytes,
            "mem_bw_bytes_per_s": self.mem_bw_bytes_per_s,
            "peak_flops": dict(self.peak_flops),
            "scaleup_link": self.scaleup_link,
            "scaleup_bw_bytes_per_s": self.scaleup_bw_bytes_per_s,
            "scaleup_domain": self.scaleup_domain,
            "scaleup_link_kind": self.scaleup_link_kind,
            "scaleout_bw_bytes_per_s": self.scaleout_bw_bytes_per_s,
            "tdp_w": self.tdp_w,
            "price_per_hour": self.price_per_hour,
            "price_date": self.price_date,
            "price_source": self.price_source,
            "price_tiers": dict(self.price_tiers),
            "price_basis": self.price_basis,
            "sources": dict(self.sources),
            "notes": self.notes,
        }


def parse_accelerator(raw: Any, where: str) -> Accelerator:
    """Validate one parsed YAML document and convert it to SI units."""
    if not isinstance(raw, dict):
        raise PlannerError(f"{where}: expected a mapping of fields, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        import difflib

        hints = [difflib.get_close_matches(k, sorted(_KEYS), n=1) for k in unknown]
        did = "; ".join(f"{k} (did you mean {h[0]}?)" if h else k for k, h in zip(unknown, hints))
        raise PlannerError(f"{where}: unknown field {did}")
    for key in ("id", "name", "vendor", "family", *_FIGURES, "price", "sources"):
        if key not in raw:
            raise InputError(key, "a value (required field is missing)", where=where)
    ident = text(raw["id"], "id", where)
    vendor = text(raw["vendor"], "vendor", where)
    if vendor not in VENDORS:
        raise InputError("vendor", f"one of {', '.join(VENDORS)}", vendor, where=where)
    family = text(raw["family"], "family", where)
    if family not in FAMILIES:
        raise InputError("family", f"one of {', '.join(FAMILIES)}", family, where=where)
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or len(aliases) > MAX_ALIASES:
        raise InputError("aliases", f"a list of at most {MAX_ALIASES} names", aliases, where=where)
    aliases = [text(a, "aliases", where) for a in aliases]

    peaks_raw = raw["peak_tflops_dense"]
    if not isinstance(peaks_raw, dict) or not peaks_raw:
        raise InputError("peak_tflops_dense", f"a mapping dtype -> TFLOP/s with keys from {DTYPES}",
                         peaks_raw, where=where)
    peaks: dict[str, float] = {}
    for dtype, val in peaks_raw.items():
        if dtype not in DTYPES:
            raise InputError(f"peak_tflops_dense.{dtype}", f"a dtype among {', '.join(DTYPES)}", where=where)
        peaks[dtype] = _figure(val, "peak_tflops_dense", where, f"peak_tflops_dense.{dtype}") * 1e12
    if "bf16" not in peaks and "fp16" not in peaks:
        raise InputError("peak_tflops_dense", "at least a bf16 or fp16 figure", where=where)

    up = raw["scaleup"]
    if not isinstance(up, dict):
        raise InputError("scaleup", "a mapping with link, bw_gb_per_s, domain_size", up, where=where)
    for key in ("link", "bw_gb_per_s", "domain_size"):
        if key not in up:
            raise InputError(f"scaleup.{key}", "a value (required field is missing)", where=where)

    price = raw["price"]
    if not isinstance(price, dict) or "usd_per_gpu_hour" not in price:
        raise InputError("price", "a mapping with usd_per_gpu_hour, date, source", price, where=where)
    domain = RANGES["scaleup.domain_size"]

    sources = raw["sources"]
    if not isinstance(sources, dict):
        raise InputError("sources", "a mapping field -> source", sources, where=where)
    for key in _FIGURES:
        if not isinstance(sources.get(key), str) or not sources[key].strip():
            raise InputError(f"sources.{key}", "a source for this figure (URL or document)", where=where)
    if not isinstance(price.get("source"), str) or not price["source"].strip():
        raise InputError("price.source", "a source for the price", where=where)

    return Accelerator(
        id=ident,
        name=text(raw["name"], "name", where),
        vendor=vendor,
        family=family,
        memory_bytes=_figure(raw["memory_gib"], "memory_gib", where) * GIB,
        mem_bw_bytes_per_s=_figure(raw["mem_bw_tb_per_s"], "mem_bw_tb_per_s", where) * 1e12,
        peak_flops=MappingProxyType(peaks),
        scaleup_link=text(up["link"], "scaleup.link", where),
        scaleup_bw_bytes_per_s=_figure(up["bw_gb_per_s"], "scaleup.bw_gb_per_s", where) * 1e9,
        scaleup_domain=integer(up["domain_size"], "scaleup.domain_size", where, maximum=int(domain[1])),
        scaleout_bw_bytes_per_s=_figure(raw["scaleout_bw_gb_per_s"], "scaleout_bw_gb_per_s", where) * 1e9,
        tdp_w=_figure(raw["tdp_w"], "tdp_w", where),
        price_per_hour=_figure(price["usd_per_gpu_hour"], "price.usd_per_gpu_hour", where),
        price_date=_short(price.get("date", ""), "price.date", where),
        price_source=text(price["source"], "price.source", where, max_len=4000),
        aliases=tuple(aliases),
        sources=MappingProxyType({str(k): _short(v, f"sources.{k}", where, 4000) for k, v in sources.items()}),
        notes=_short(raw.get("notes") or "", "notes", where, 4000),
        path=where,
        price_tiers=MappingProxyType(_price_tiers(price, where)),
        price_basis=_price_basis(price.get("basis"), where),
        scaleup_link_kind=_link_kind(up.get("link_kind"), where),
    )


PRICE_BASES = ("rental", "purchase")


def _price_basis(value: Any, where: str) -> str:
    """Optional ``price.basis``: rental (default) or purchase."""
    if value is None:
        return "rental"
    if value not in PRICE_BASES:
        raise InputError("price.basis", f"one of {', '.join(PRICE_BASES)}", value, where=where)
    return str(value)


_LINK_KIND = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


def _link_kind(value: Any, where: str) -> str:
    """Optional ``scaleup.link_kind``: a short lower-case id (letters, digits, dashes); absent is ""."""
    if value is None:
        return ""
    kind = text(value, "scaleup.link_kind", where, max_len=40)
    if not _LINK_KIND.fullmatch(kind):
        raise InputError("scaleup.link_kind", "a lower-case id of letters, digits and dashes (e.g. nvlink4-hgx)",
                         value, where=where)
    return kind


_TIER_KEYS = {"reserved_1y": "reserved_1y_usd_per_gpu_hour", "reserved_3y": "reserved_3y_usd_per_gpu_hour",
              "spot": "spot_usd_per_gpu_hour"}


def _price_tiers(price: dict, where: str) -> dict[str, float]:
    """Optional tier prices of the price block (each needs the block's source to name it)."""
    return {tier: _figure(price[key], "price.usd_per_gpu_hour", where, f"price.{key}")
            for tier, key in _TIER_KEYS.items() if price.get(key) is not None}


def _figure(value: Any, key: str, where: str, field: str | None = None) -> float:
    """A figure checked against its physical range in RANGES (``field`` names it in the message)."""
    lo, hi, unit = RANGES[key]
    return bounded(value, field or key, where, lo, hi, unit)


def _short(value: Any, field: str, where: str, max_len: int = 256) -> str:
    """An optional text field: a string (or a plain number/date) of at most ``max_len`` characters."""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        if value is None or value == "":
            return ""
        if not hasattr(value, "isoformat"):
            raise InputError(field, "a short text", value, where=where)
    out = str(value).strip()
    if len(out) > max_len:
        raise InputError(field, f"a text of at most {max_len} characters", value, where=where)
    return out


def load_accelerator_file(path: Path) -> Accelerator:
    """Load and validate one hardware YAML file."""
    return parse_accelerator(load_yaml(path, "hardware file"), str(path))


def _yaml_files(path: Path) -> list[Path]:
    path = Path(path)
    if path.is_dir():
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        if not files:
            raise PlannerError(f"hardware folder {path}: no .yaml files in it")
        return files
    if not path.exists():
        raise PlannerError(f"hardware path {path}: file not found")
    return [path]


@dataclass(frozen=True)
class HardwareDB:
    """The loaded accelerators, looked up by id or alias (case-insensitive)."""

    accelerators: tuple[Accelerator, ...]
    _index: dict[str, Accelerator] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = build_index(((a.id, a.aliases, a) for a in self.accelerators), "accelerator")
        object.__setattr__(self, "_index", index)

    def get(self, name: str | Accelerator) -> Accelerator:
        """Resolve a name or alias; unknown names fail with the closest matches."""
        if isinstance(name, Accelerator):
            return name
        return resolve(name, self._index, "accelerator", [a.id for a in self.accelerators])

    def ids(self) -> list[str]:
        return [a.id for a in self.accelerators]

    def __iter__(self):
        return iter(self.accelerators)

    def __len__(self) -> int:
        return len(self.accelerators)


def env_hardware_paths() -> list[Path]:
    """The files or folders ``$PLANNER_HARDWARE_PATH`` names (``os.pathsep``-separated)."""
    env = os.environ.get("PLANNER_HARDWARE_PATH")
    return [Path(p) for p in env.split(os.pathsep) if p] if env else []


def _extra_paths(extra: Iterable[str | Path] | None) -> list[Path]:
    """``extra`` then the environment's paths, each once (a path named by both is read once)."""
    out: list[Path] = []
    seen: set[str] = set()
    for p in [*(Path(p) for p in (extra or [])), *env_hardware_paths()]:
        try:
            key = str(p.resolve())
        except (OSError, RuntimeError):
            key = str(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def load_hardware(extra_paths: Iterable[str | Path] | None = None, *, shipped: bool = True) -> HardwareDB:
    """Load the shipped ``hardware_db`` plus user files or folders.

    A user file whose id equals a shipped id replaces the shipped entry (so users can
    correct a figure without editing the repository).
    """
    by_id: dict[str, Accelerator] = {}
    if shipped:
        for f in _yaml_files(data_dir("hardware_db")):
            acc = load_accelerator_file(f)
            by_id[fold(acc.id)] = acc
    user: dict[str, Path] = {}  # user files may replace a shipped id, not each other (which would be meant?)
    for p in _extra_paths(extra_paths):
        for f in _yaml_files(p):
            acc = load_accelerator_file(f)
            key = fold(acc.id)
            if key in user and not same_file(user[key], f):
                raise PlannerError(f"hardware: {f} and {user[key]} both define accelerator {acc.id!r}; keep one "
                                   "(a user file may replace a shipped entry, but not another user file)")
            user[key] = f
            by_id[key] = acc
    return HardwareDB(tuple(by_id.values()))


@lru_cache(maxsize=1)
def default_hardware() -> HardwareDB:
    """The shipped database (cached)."""
    return load_hardware()


def get_accelerator(name: str | Accelerator, db: HardwareDB | None = None) -> Accelerator:
    """Resolve an accelerator by id or alias in ``db`` (default: the shipped database)."""
    return (db or default_hardware()).get(name)
