"""The Launch page lists the top-tuning study's datasets under the dataset picker."""

from tests.support.dashboard import open_page
from toptune import catalogue


def test_the_study_datasets_are_listed_with_how_to_get_each(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPTUNE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "data" / "cifar-10-batches-py" / "batches.meta").write_bytes(b"x")
    at = open_page("launch")
    assert not at.exception
    (expander,) = [e for e in at.expander if "top-tuning study" in e.label]
    assert f"({len(catalogue.ENTRIES)} catalogued)" in expander.label
    table = next(d.value for d in at.dataframe if "get it" in d.value.columns)
    assert list(table["name"]) == [e.name for e in catalogue.ENTRIES]
    here = dict(zip(table["name"], table["here"]))
    assert here["cifar10"] and not here["beans"]
    assert "--dataset hf:AI-Lab-Makerere/beans" in set(table["get it"])
