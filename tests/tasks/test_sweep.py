"""The sweep's winner is chosen on validation figures; test figures only report."""

from tasks.records import EvaluationReport, ModelBundle
from tasks.sweep import SELECTION, SweepResult, best_result, comparison_rows


def _result(name: str, validation: tuple[float, float, float], test: float) -> SweepResult:
    accuracy, cer, loss = validation
    model = ModelBundle(f"/models/{name}", content_digest=name, validation={
        "val_sequence_accuracy": accuracy, "val_character_error_rate": cer, "val_loss": loss})
    evaluation = EvaluationReport(f"/evaluations/{name}", content_digest=name, metrics={
        "sequence_accuracy": test, "character_error_rate": 1 - test})
    return SweepResult(configuration=name, recipe="crnn", learning_rate=None, seed=1,
                       model=model, evaluation=evaluation)


def test_validation_chooses_when_validation_and_test_disagree():
    validation_winner = _result("a", (0.98, 0.004, 0.05), test=0.95)
    test_winner = _result("b", (0.96, 0.008, 0.04), test=0.99)
    results = [test_winner, validation_winner]
    assert best_result(results) is validation_winner
    rows = comparison_rows(results)
    assert [row["status"] for row in rows] == ["ok", "best"]
    assert rows[0]["test sequence accuracy"] == 0.99 and rows[1]["val sequence accuracy"] == 0.98


def test_ties_on_accuracy_go_to_lower_validation_cer_then_loss():
    lower_cer = _result("a", (0.97, 0.005, 0.09), test=0.90)
    lower_loss = _result("b", (0.97, 0.006, 0.01), test=0.99)
    assert best_result([lower_loss, lower_cer]) is lower_cer
    same_cer = _result("c", (0.97, 0.005, 0.02), test=0.80)
    assert best_result([lower_cer, same_cer]) is same_cer


def test_failed_configurations_never_win_and_the_rule_is_stated():
    failed = SweepResult(configuration="f", recipe="crnn", learning_rate=None, seed=1,
                         error="TrainingError: diverged")
    assert best_result([failed]) is None
    assert "validation" in SELECTION and "never choose" in SELECTION
