import click
import pytest
from click.testing import CliRunner

from flows.options import params_command
from ocr_core.config import MnistParams


@click.command()
@params_command(MnistParams)
def show(params: MnistParams) -> None:
    click.echo(",".join(params.models) + f" {params.epochs}")


@pytest.mark.parametrize(("args", "expected"), [
    ([], "dense,simple_cnn,larger_cnn 15"),
    (["--models", "dense"], "dense 15"),
    (["--models", "larger_cnn,dense", "--epochs", "2"], "larger_cnn,dense 2"),
    (["--models", "dense", "--models", "simple_cnn, larger_cnn"], "dense,simple_cnn,larger_cnn 15"),
])
def test_list_option_comma_separated_or_repeated(args, expected):
    result = CliRunner().invoke(show, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == expected


def test_list_items_are_checked():
    result = CliRunner().invoke(show, ["--models", "dense,lenet"])
    assert result.exit_code == 2
    assert "'lenet' is not allowed: input should be 'dense', 'simple_cnn' or 'larger_cnn'" in result.output


def test_model_validation_becomes_a_usage_error():
    result = CliRunner().invoke(show, ["--source", "local"])
    assert result.exit_code == 2
    assert "source 'local' needs mnist_path" in result.output


def test_a_renamed_recipe_is_refused_with_its_new_name():
    from click.testing import CliRunner

    from flows.cli import main

    for args in (["captcha", "--recipe", "seed"], ["sweep", "--recipes", "crnn,seed"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2
        assert "the recipe 'seed' is now called 'keras_example'" in result.output
