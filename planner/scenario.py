"""Scenario: what to serve, at what rate and SLO, on which accelerators, under which limits.

A scenario is a YAML (or TOML) file or the same fields as CLI flags. Every key is checked: an
unknown key fails with a did-you-mean, a wrong type names the field and what was expected.

```yaml
model: llama-3.1-70b           # id, alias, HF repo id, or path to a config.json
precision: fp8                 # weights: bf16 fp16 fp8 int8 int4 fp4
kv_dtype: fp8                  # default: 16-bit
engine: vllm                   # vllm | sglang | trtllm | ideal | path to a profile YAML
workload:
  rate_rps: 20
  input: lognormal:mean=1500,p99=8000     # or 1024, or hist:file.csv
  output: lognormal:mean=300,p99=1500
  arrival_cv: 1.0
  # trace: traces/burstgpt.csv  (instead of input/output; rate and cv from its timestamps unless given)
buckets: {isl: 4, osl: 4}
slo: {ttft_s: 2.0, tpot_s: 0.05, percentile: 99}
accelerators: [H100-SXM, H200-SXM]       # default: every accelerator in the database
prices: {H100-SXM: 2.5}                  # $/GPU-hour overrides
availability: {H100-SXM: 32}             # max GPUs per type
budget_per_hour: 250
redundancy: {spare_instances: 1}         # N+1: each group keeps one spare instance
target_utilisation: 0.9                  # plan instances to run at most this busy
objective: cost                          # cost | gpus | power
disaggregation: auto                     # auto | off | only
parallelism: {tp: [1, 2, 4, 8], pp: [1, 2]}
solver: {time_limit_s: 60, gap: 0.002}   # stop within 0.2% of the proven optimum
queueing: {pool: 1}   # override: every group queues as this many instances (default: by the count the plan buys)
engine_settings: {token_budget: 8192, max_seqs: 256, memory_fraction: 0.9}   # default: the engine profile's
cross_vendor_kv: false   # allow a prefill pool of one vendor to feed a decode pool of another
speculative: {method: mtp, draft_tokens: 1, acceptance: 0.85}   # mtp | eagle | draft (+ draft_model)
# workload.prefix_cache_hit: 0.5   share of prompt tokens found in the prefix cache
# a day: workload.rate_profile: [2.5, 2.5, ..., 10, ...] (req/s per hour; see planner/rate_profile.py)
# prices: {H200-SXM: {on_demand: 3.59, reserved_1y: 2.6, spot: 1.8, spot_interruption: 0.1}}
# pricing: {currency: USD, reserved_term: 1y, price_per_kwh: 0.12, pue: 1.3, file: prices.yaml}
```
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from planner._yaml import load_toml, load_yaml
from planner.errors import InputError, PlannerError, shorten
from planner.pricing import Pricing, parse_pricing
from planner.profile import EngineSettings
from planner.rate_profile import RateProfile, parse_rate_profile
from planner.speculative import Speculative, check_prefix_hit
from planner.workload import SLO, Workload, parse_length, read_trace

# Caps on counts a scenario may ask for: each is far above a useful value, and each keeps one plan to
# seconds and megabytes (10000x4 buckets took minutes and GB; a million spares bought two million GPUs).
MAX_BUCKETS_PER_AXIS = 64
MAX_BUCKETS = 1024
MAX_SPARE_INSTANCES = 64
MAX_PARALLEL = 1024  # a TP or PP degree
MAX_PARALLEL_OPTIONS = 16
MAX_GPUS_AVAILABLE = 1_000_000  # per accelerator type
MAX_ACCELERATORS = 256  # names in one scenario
MAX_TIME_LIMIT_S = 86_400.0
MAX_PRICE = 10_000.0  # $/GPU-hour
OBJECTIVES = ("cost", "gpus", "power", "energy")
DISAGG = ("auto", "off", "only")
_TOP_KEYS = {"model", "precision", "kv_dtype", "engine", "workload", "buckets", "slo", "accelerators", "prices",
             "availability", "budget_per_hour", "redundancy", "target_utilisation", "objective", "disaggregation",
             "parallelism", "solver", "queueing", "name", "description", "engine_settings",
             "cross_vendor_kv", "models", "speculative", "pricing"}


@dataclass(frozen=True)
class Scenario:
    """Everything ``plan`` needs; plain values, SI units."""

    model: str
    workload: Workload
    slo: SLO
    precision: str = "bf16"
    kv_dtype: str | None = None
    engine: str = "vllm"
    n_isl: int = 4
    n_osl: int = 4
    accelerators: tuple[str, ...] | None = None
    prices: dict[str, float] = field(default_factory=dict)
    availability: dict[str, int] = field(default_factory=dict)
    budget_per_hour: float | None = None
    spare_instances: int = 0
    target_utilisation: float = 0.9
    objective: str = "cost"
    disaggregation: str = "auto"
    tp_options: tuple[int, ...] = (1, 2, 4, 8)
    pp_options: tuple[int, ...] = (1, 2)
    time_limit_s: float = 60.0
    gap_rel: float = 0.002
    queue_pool: int | None = None
    """Instances queueing as one for TTFT; None: fleet tiers chosen by the ILP with the instance count."""
    name: str = ""
    engine_settings: EngineSettings = field(default_factory=EngineSettings)
    cross_vendor_kv: bool = False
    description: str = ""
    pricing: Pricing = field(default_factory=Pricing)
    """Price tiers per accelerator, currency, power price (``planner.pricing``)."""
    rate_profile: RateProfile | None = None
    """Rates per period of a day (``workload.rate_profile``); the workload's rate is then its peak."""
    source: str = ""
    """Absolute path of the file the scenario was read from ("" when built from flags or a dict, or when
    command-line lengths replaced the file's)."""

    def __post_init__(self) -> None:
        for key in ("objective", "disaggregation"):  # names are matched regardless of case, as engine names are
            val = getattr(self, key)
            if isinstance(val, str):
                object.__setattr__(self, key, val.strip().lower())
        if self.objective not in OBJECTIVES:
            raise InputError("objective", f"one of {', '.join(OBJECTIVES)}", self.objective)
        if self.disaggregation not in DISAGG:
            raise InputError("disaggregation", f"one of {', '.join(DISAGG)}", self.disaggregation)
        if not (0 < self.target_utilisation <= 1):
            raise InputError("target_utilisation", "a fraction in (0, 1]", self.target_utilisation)
        if self.budget_per_hour is not None and not (self.budget_per_hour > 0 and math.isfinite(self.budget_per_hour)):
            raise InputError("budget_per_hour", "a positive number of dollars per hour", self.budget_per_hour)
        if not 0 <= self.spare_instances <= MAX_SPARE_INSTANCES:
            raise InputError("redundancy.spare_instances", f"an integer in 0..{MAX_SPARE_INSTANCES}",
                             self.spare_instances)
        self._check_counts()
        if not (0 < self.time_limit_s <= MAX_TIME_LIMIT_S):
            raise InputError("solver.time_limit_s", f"a positive number of seconds, at most {MAX_TIME_LIMIT_S:g}",
                             self.time_limit_s)
        if self.queue_pool is not None and (isinstance(self.queue_pool, bool) or not isinstance(self.queue_pool, int)
                                            or not 1 <= self.queue_pool <= 256):
            raise InputError("queueing.pool", "a whole number of instances in 1..256", self.queue_pool)
        if not (0 <= self.gap_rel < 0.5):
            raise InputError("solver.gap", "a relative optimality gap in [0, 0.5), e.g. 0.002", self.gap_rel)
        if self.slo.ttft_s is None and self.slo.tpot_s is None:
            raise InputError("slo", "at least one of ttft_s or tpot_s")

    def _check_counts(self) -> None:
        """Bucket grid, parallelism options, accelerator list and availability within their caps."""
        for name, n in (("buckets.isl", self.n_isl), ("buckets.osl", self.n_osl)):
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_BUCKETS_PER_AXIS:
                raise InputError(name, f"a whole number of buckets in 1..{MAX_BUCKETS_PER_AXIS}", n)
        if self.n_isl * self.n_osl > MAX_BUCKETS:
            raise InputError("buckets", f"at most {MAX_BUCKETS} buckets in all (isl x osl)",
                             f"{self.n_isl} x {self.n_osl} = {self.n_isl * self.n_osl}")
        for name, opts in (("parallelism.tp", self.tp_options), ("parallelism.pp", self.pp_options)):
            if not opts or len(opts) > MAX_PARALLEL_OPTIONS or any(
                    isinstance(o, bool) or not isinstance(o, int) or not 1 <= o <= MAX_PARALLEL for o in opts):
                raise InputError(name, f"a list of at most {MAX_PARALLEL_OPTIONS} integers in 1..{MAX_PARALLEL}",
                                 list(opts))
        if self.accelerators is not None and len(self.accelerators) > MAX_ACCELERATORS:
            raise InputError("accelerators", f"at most {MAX_ACCELERATORS} names", len(self.accelerators))
        for key, gpus in self.availability.items():
            if not 0 <= gpus <= MAX_GPUS_AVAILABLE:
                raise InputError(f"availability.{key}", f"a whole number of GPUs in 0..{MAX_GPUS_AVAILABLE:,}", gpus)
        for key, price in self.prices.items():
            if not 0 <= price <= MAX_PRICE:  # 0: owned hardware (planner.pricing checks it pays for power)
                raise InputError(f"prices.{key}", f"a $/GPU-hour in [0, {MAX_PRICE:g}]", price)

    def with_rate(self, rate_rps: float) -> Scenario:
        return replace(self, workload=replace(self.workload, rate_rps=rate_rps))

    def with_slo(self, **kw: Any) -> Scenario:
        return replace(self, slo=replace(self.slo, **kw))


def _check_keys(raw: dict, allowed: set[str], where: str, prefix: str = "") -> None:
    for key in raw:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            did = f" (did you mean {prefix}{hint[0]}?)" if hint else f"; known: {', '.join(sorted(allowed))}"
            raise PlannerError(f"{where}: unknown key {prefix}{shorten(key)}{did}")


def _num(raw: dict, key: str, where: str, default: Any = None, *, integer: bool = False) -> Any:
    if key not in raw or raw[key] is None:
        return default
    val = raw[key]
    if isinstance(val, np.generic) and not isinstance(val, np.bool_):  # a value read from a DataFrame
        val = val.item()
    bad_type = isinstance(val, bool) or not isinstance(val, (int, float))
    if bad_type or (isinstance(val, float) and not math.isfinite(val)):
        raise InputError(key, "an integer" if integer else "a finite number", val, where=where)
    if integer:
        if float(val) != int(val):
            raise InputError(key, "an integer", val, where=where)
        return int(val)
    return float(val)


def _mapping(raw: Any, key: str, where: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(key, "a mapping", raw, where=where)
    return raw


def parse_workload(raw: Any, where: str, base: Path, require_rate: bool = True) -> Workload:
    """The ``workload:`` block. With ``require_rate=False`` (``estimate`` offline or closed loop) a
    missing rate_rps is allowed; the workload then carries a nominal 1 req/s that callers must not
    report (``estimate.read_workload`` returns the stated rate separately)."""
    w = _mapping(raw, "workload", where)
    if not w:
        raise InputError("workload", "a mapping with rate_rps and input/output (or trace)", where=where)
    _check_keys(w, {"rate_rps", "input", "output", "arrival_cv", "trace", "prefix_cache_hit", "rate_profile"}, where,
                "workload.")
    if "rate_profile" in w and w.get("rate_rps") is not None:
        raise InputError("workload.rate_rps", "absent when workload.rate_profile is given (the plan sizes for "
                         "the profile's peak)", w["rate_rps"], where=where)
    rate = _num(w, "rate_rps", where)
    if "rate_profile" in w:
        rate = 1.0  # replaced by the profile's peak in parse_scenario
    cv = _num(w, "arrival_cv", where)
    if "trace" in w:
        path = Path(str(w["trace"]))
        if not path.is_absolute():
            path = base / path
        wl = Workload.from_trace(read_trace(path), rate_rps=rate, arrival_cv=cv)
        return wl
    for key in ("input", "output"):
        if key not in w:
            raise InputError(f"workload.{key}", "a length such as 1024, lognormal:mean=800,p99=4000, hist:file.csv",
                             where=where)
    if rate is None and require_rate:
        raise InputError("workload.rate_rps", "a positive request rate", where=where)
    rate = 1.0 if rate is None else rate

    def length(key: str) -> Any:
        text = w[key]
        if text is None or (isinstance(text, str) and text.strip().lower() in ("", "none", "nan")):
            raise InputError(f"workload.{key}", "a length such as 1024, lognormal:mean=800,p99=4000, hist:file.csv",
                             text, where=where)
        s = str(text)
        if s.startswith("hist:") and not Path(s[5:]).is_absolute():
            s = "hist:" + str(base / s[5:])
        try:
            return parse_length(s)
        except InputError as exc:  # the length parser knows the text, not the field it came from
            if exc.field in ("length", "lengths"):
                raise InputError(f"workload.{key}", str(exc).split("expected ", 1)[-1].rsplit(" (got", 1)[0],
                                 text, where=where) from None
            raise

    return Workload(rate, length("input"), length("output"), 1.0 if cv is None else cv)


def parse_scenario(raw: Any, where: str = "scenario", base: Path | None = None) -> Scenario:
    """Validate a parsed scenario document."""
    base = base or Path.cwd()
    if not isinstance(raw, dict):
        raise PlannerError(f"{where}: expected a mapping of scenario fields, got {type(raw).__name__}")
    _check_keys(raw, _TOP_KEYS, where)
    if "models" in raw:  # a fleet of several models: planner.multi_scenario reads it
        raise PlannerError(f"{where}: models: a scenario with several models; only `planner plan` takes it "
                           f"(give this command a one-model scenario)")
    if "model" not in raw or not isinstance(raw["model"], str):
        raise InputError("model", "a model name or config.json path", raw.get("model"), where=where)
    slo_raw = _mapping(raw.get("slo"), "slo", where)
    _check_keys(slo_raw, {"ttft_s", "tpot_s", "percentile", "e2e_s", "attainment"}, where, "slo.")
    pct = slo_raw.get("percentile", 99)
    for unsupported in ("e2e_s", "attainment"):
        if slo_raw.get(unsupported) is not None:
            raise InputError(f"slo.{unsupported}", "ttft_s and tpot_s at a percentile; end-to-end limits and a "
                             "separate attainment share are not planned for yet", slo_raw[unsupported], where=where)
    slo = SLO(ttft_s=_num(slo_raw, "ttft_s", where), tpot_s=_num(slo_raw, "tpot_s", where),
              percentile=SLO.parse_percentile(pct))
    buckets = _mapping(raw.get("buckets"), "buckets", where)
    _check_keys(buckets, {"isl", "osl"}, where, "buckets.")
    red = _mapping(raw.get("redundancy"), "redundancy", where)
    _check_keys(red, {"spare_instances"}, where, "redundancy.")
    par = _mapping(raw.get("parallelism"), "parallelism", where)
    _check_keys(par, {"tp", "pp"}, where, "parallelism.")
    queueing = _mapping(raw.get("queueing"), "queueing", where)
    _check_keys(queueing, {"pool"}, where, "queueing.")
    solver = _mapping(raw.get("solver"), "solver", where)
    _check_keys(solver, {"time_limit_s", "gap"}, where, "solver.")
    accs = raw.get("accelerators")
    if accs is not None and (not isinstance(accs, list) or not accs or
                             not all(isinstance(a, str) and a.strip() for a in accs)):
        raise InputError("accelerators", "a non-empty list of accelerator names", accs, where=where)
    pricing = parse_pricing(raw.get("prices"), raw.get("pricing"), where, base)
    prices = {k: e.on_demand for k, e in pricing.entries.items() if e.on_demand is not None and k in
              _mapping(raw.get("prices"), "prices", where)}
    avail = _mapping(raw.get("availability"), "availability", where)
    for k, v in avail.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InputError(f"availability.{k}", "a whole number of GPUs >= 0", v, where=where)
    if isinstance(raw.get("disaggregation"), bool):  # YAML 1.1 habit: off/false means "off", on/true "auto"
        raw = {**raw, "disaggregation": "auto" if raw["disaggregation"] else "off"}
    for key in ("precision", "kv_dtype", "engine", "objective", "disaggregation"):
        if key in raw and raw[key] is not None and not isinstance(raw[key], str):
            raise InputError(key, "a string", raw[key], where=where)

    def ints(val: Any, key: str, default: tuple[int, ...]) -> tuple[int, ...]:
        if val is None:
            return default
        if not isinstance(val, list):
            raise InputError(key, "a list of integers", val, where=where)
        return tuple(val)

    workload, profile = _workload_and_profile(raw.get("workload"), where, base)
    return Scenario(
        model=raw["model"], workload=workload, slo=slo, pricing=pricing, rate_profile=profile,
        precision=str(raw.get("precision") or "bf16"), kv_dtype=raw.get("kv_dtype"),
        engine=str(raw.get("engine") or "vllm"),
        n_isl=_num(buckets, "isl", where, 4, integer=True), n_osl=_num(buckets, "osl", where, 4, integer=True),
        accelerators=tuple(accs) if accs else None, prices={str(k): float(v) for k, v in prices.items()},
        availability={str(k): int(v) for k, v in avail.items()},
        budget_per_hour=_num(raw, "budget_per_hour", where),
        spare_instances=_num(red, "spare_instances", where, 0, integer=True),
        target_utilisation=_num(raw, "target_utilisation", where, 0.9),
        objective=str(raw.get("objective") or "cost"), disaggregation=str(raw.get("disaggregation") or "auto"),
        tp_options=ints(par.get("tp"), "parallelism.tp", (1, 2, 4, 8)),
        pp_options=ints(par.get("pp"), "parallelism.pp", (1, 2)),
        time_limit_s=_num(solver, "time_limit_s", where, 60.0), gap_rel=_num(solver, "gap", where, 0.002),
        queue_pool=_num(queueing, "pool", where, None, integer=True),
        name=str(raw.get("name") or ""),
        engine_settings=_with_features(EngineSettings.parse(raw.get("engine_settings"), where), raw, where),
        cross_vendor_kv=_flag(raw, "cross_vendor_kv", where),
        description=str(raw.get("description") or ""),
    )


def _with_features(settings: EngineSettings, raw: dict, where: str) -> EngineSettings:
    """Engine settings with the scenario's ``speculative:`` and ``workload.prefix_cache_hit`` (planner.speculative)."""
    spec = Speculative.parse(raw.get("speculative"), where)
    hit = (raw.get("workload") or {}).get("prefix_cache_hit")
    return replace(settings, speculative=spec, prefix_cache_hit=None if hit is None else check_prefix_hit(hit))


def _workload_and_profile(raw: Any, where: str, base: Path) -> tuple[Workload, RateProfile | None]:
    """The workload, and its rate profile when ``workload.rate_profile`` is given (rate = the peak)."""
    wl = parse_workload(raw, where, base)
    if not isinstance(raw, dict) or "rate_profile" not in raw:
        return wl, None
    times = None
    if "trace" in raw:
        path = Path(str(raw["trace"]))
        times = read_trace(path if path.is_absolute() else base / path).timestamps_s
    profile = parse_rate_profile(raw["rate_profile"], where, times)
    return replace(wl, rate_rps=profile.peak_rps), profile


def _flag(raw: dict, key: str, where: str) -> bool:
    val = raw.get(key, False)
    if not isinstance(val, bool):
        raise InputError(key, "true or false", val, where=where)
    return val


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario from YAML (``.yaml``/``.yml``) or TOML (``.toml``)."""
    if not isinstance(path, str | Path):
        raise InputError("scenario", "a path to a YAML or TOML scenario file", path)
    p = Path(path)
    if str(path) == "-":  # YAML on standard input; relative paths in it are taken from the working folder
        raw = load_yaml(p, "scenario")
        if raw is None:
            raise PlannerError("scenario <stdin>: empty, expected model, workload and slo")
        if not isinstance(raw, dict):
            raise PlannerError("scenario <stdin>: expected YAML mapping the scenario's fields (model, workload, slo); "
                               "a TOML scenario is read from a .toml file, not from standard input")
        return parse_scenario(raw, "<stdin>", Path.cwd())
    raw = load_toml(p, "scenario") if p.suffix.lower() == ".toml" else load_yaml(p, "scenario")
    if raw is None:
        raise PlannerError(f"scenario {p}: empty file, expected model, workload and slo")
    return replace(parse_scenario(raw, str(p), p.parent), source=str(p.resolve()))


def with_overrides(sc: Scenario | None, *, model: str | None = None, precision: str | None = None,
                   kv_dtype: str | None = None, engine: str | None = None, rate_rps: float | None = None,
                   isl: str | None = None, osl: str | None = None, ttft_s: float | None = None,
                   tpot_s: float | None = None, percentile: str | float | None = None,
                   accelerators: str | None = None, budget_per_hour: float | None = None,
                   objective: str | None = None, disaggregation: str | None = None) -> Scenario:
    """A scenario from a file's scenario with command-line values laid over it (``None``: keep the
    file's), or from the values alone when there is no file; re-validated as a whole."""
    if sc is None:
        if model is None or rate_rps is None or isl is None or osl is None or (ttft_s is None and tpot_s is None):
            raise PlannerError("plan: give a scenario file, or --model, --rate, --isl, --osl and --ttft/--tpot")
        sc = parse_scenario({"model": model, "workload": {"rate_rps": rate_rps, "input": isl, "output": osl},
                             "slo": {"ttft_s": ttft_s, "tpot_s": tpot_s}}, "flags")
    simple = {"model": model, "precision": precision, "kv_dtype": kv_dtype, "engine": engine, "objective": objective,
              "disaggregation": disaggregation, "budget_per_hour": budget_per_hour}
    sc = replace(sc, **{k: v for k, v in simple.items() if v is not None})
    if accelerators is not None:
        names = tuple(g.strip() for g in accelerators.split(",") if g.strip())
        if not names:
            raise InputError("--gpus", "a comma-separated list of accelerator names", accelerators)
        sc = replace(sc, accelerators=names)
    if rate_rps is not None or isl or osl:
        w = sc.workload
        sc = replace(sc, workload=Workload(rate_rps if rate_rps is not None else w.rate_rps,
                                           parse_length(isl) if isl else w.input_len,
                                           parse_length(osl) if osl else w.output_len, w.arrival_cv, w.pairs),
                     source="" if isl or osl else sc.source)
    if ttft_s is not None or tpot_s is not None or percentile is not None:
        sc = replace(sc, slo=SLO(ttft_s=ttft_s if ttft_s is not None else sc.slo.ttft_s,
                                 tpot_s=tpot_s if tpot_s is not None else sc.slo.tpot_s,
                                 percentile=SLO.parse_percentile(percentile) if percentile is not None
                                 else sc.slo.percentile))
    return replace(sc)  # re-validate after overrides
