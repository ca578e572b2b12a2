"""deploy/prometheus-alerts.yml: each rule is complete, each metric it names is served by /metrics, promtool agrees."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
RULES = DEPLOY / "prometheus-alerts.yml"
# The issue's list, each with the rule that covers it.
EXPECTED = {
    "PaywatchWebhooksSilent": "webhooks silent while payments are pending",
    "PaywatchWebhookSignatureFailures": "signature failures over 1% in 5 min",
    "PaywatchReconcileLagging": "reconcile lag over 2 intervals",
    "PaywatchPaidAfterClose": "payments received for closed orders",
    "PaywatchBroadcastFailures": "broadcast failures",
}


def rule_blocks() -> dict[str, str]:
    """Return {alert name: the text of its rule} (the file is plain block YAML, one rule per ``- alert:``)."""
    parts = re.split(r"^\s*- alert: (\w+)\s*$", RULES.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def expressions() -> dict[str, str]:
    """Return {alert name: its PromQL expression} (inline, or a ``|`` block indented under ``expr:``)."""
    found = {}
    for name, block in rule_blocks().items():
        match = re.search(r"^([ ]+)expr: (.*)\n((?:\1[ ]+\S.*\n)*)", block, re.MULTILINE)
        assert match, f"{name} has no expr"
        found[name] = match.group(3) if match.group(2).strip() == "|" else match.group(2)
    return found


def test_the_file_is_one_group_of_rules_with_every_alert_the_issue_asks_for() -> None:
    text = RULES.read_text()
    assert re.search(r"^groups:\n  - name: paywatch\n    rules:\n", text, re.MULTILINE)
    assert set(EXPECTED) <= set(rule_blocks())


@pytest.mark.parametrize("name", sorted(rule_blocks()))
def test_each_rule_has_an_expression_a_severity_and_a_summary(name: str) -> None:
    block = rule_blocks()[name]
    assert "paywatch_" in expressions()[name]
    assert re.search(r"^\s+severity: (warning|critical)$", block, re.MULTILINE)
    assert re.search(r"^\s+summary: \S", block, re.MULTILINE)


@pytest.mark.django_db
def test_every_metric_the_rules_use_is_served_by_metrics(client, settings) -> None:
    settings.METRICS_TOKEN = ""
    served = set()
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        served.add(family.name)
        served.update(sample.name for sample in family.samples)
    used = {name for expression in expressions().values() for name in re.findall(r"\b(paywatch_[a-z_]+)\b", expression)}
    assert used, "no metric found: the pattern is stale"
    assert used - served == set()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian package prometheus)")
def test_promtool_checks_the_rules_and_their_unit_tests() -> None:
    for command in (["check", "rules", RULES.name], ["test", "rules", "prometheus-alerts.test.yml"]):
        done = subprocess.run(["promtool", *command], cwd=DEPLOY, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
