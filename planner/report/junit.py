"""JUnit XML for ``planner validate --junit``: one test case per (accelerator, engine, family, metric)."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from planner.files import write_atomic


def write_junit(path: Path, val, max_mdape: float | None, max_p90_ape: float | None) -> None:
    suite = ET.Element("testsuite", name="planner.validate")
    failures = 0
    for r in val.summary.to_dict("records"):
        name = f"{r['accelerator']}/{r['engine']}/{r['model_family']}/{r['metric']}"
        case = ET.SubElement(suite, "testcase", classname="planner.validate", name=name)
        msgs = []
        if max_mdape is not None and r["mdape"] > max_mdape:
            msgs.append(f"MdAPE {100 * r['mdape']:.1f}% > {100 * max_mdape:.1f}%")
        if max_p90_ape is not None and r["p90_ape"] > max_p90_ape:
            msgs.append(f"p90 APE {100 * r['p90_ape']:.1f}% > {100 * max_p90_ape:.1f}%")
        ET.SubElement(case, "system-out").text = (f"n={r['n']} MdAPE={100 * r['mdape']:.1f}% "
                                                  f"p90={100 * r['p90_ape']:.1f}% bias={100 * r['bias']:+.1f}%")
        if msgs:
            failures += 1
            ET.SubElement(case, "failure", message="; ".join(msgs))
    for line, reason in val.skipped:
        case = ET.SubElement(suite, "testcase", classname="planner.validate.skipped", name=f"line {line}")
        ET.SubElement(case, "skipped", message=reason)
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("skipped", str(len(val.skipped)))
    write_atomic(path, ET.tostring(suite, encoding="utf-8", xml_declaration=True))
