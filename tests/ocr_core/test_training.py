import pytest

from ocr_core import dataset as ds
from ocr_core.ctc import Vocabulary
from ocr_core.models import get_recipe
from ocr_core.pipeline import load_split, save_split
from ocr_core.training import MONITOR, fit


@pytest.mark.slow
def test_fit_records_history_and_keeps_best_epoch(tmp_path, captcha_dir):
    records = ds.index_images(ds.list_pngs(captcha_dir))
    vocabulary = Vocabulary(ds.build_vocabulary([r.label for r in records]))
    recipe = get_recipe("crnn")
    for name, part in (("train", records[:32]), ("validation", records[32:])):
        save_split(part, vocabulary, tmp_path / name, height=recipe.height, width=recipe.width,
                   max_label_length=5)
    result = fit(recipe, vocabulary, load_split(tmp_path / "train", 16, shuffle=True, seed=0),
                 load_split(tmp_path / "validation", 16), epochs=2, patience=1, seed=0)
    assert set(result.history) >= {"loss", "val_loss", "val_sequence_accuracy", MONITOR,
                                   "epoch_seconds"}
    assert len(result.history["loss"]) == 2
    assert result.history[MONITOR][result.best_epoch - 1] == min(result.history[MONITOR])
    assert result.model.output_shape == (None, 16, vocabulary.num_classes)
