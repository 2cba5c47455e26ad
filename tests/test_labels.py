"""Class order and session order: each defined once, used by readers, models and reports alike."""

from emofusion.labels import LABEL_MAPS, PAPER_CLASSES, ordered_classes
from emofusion.records import session_sort_key


def test_paper_classes_first_in_table1_order_then_the_rest_alphabetically():
    assert ordered_classes(["sad", "neu", "exc", "ang"]) == PAPER_CLASSES
    assert ordered_classes(["fru", "sad", "hap", "ang", "sad"]) == ("ang", "sad", "fru", "hap")
    assert ordered_classes([]) == ()
    assert ordered_classes(LABEL_MAPS["six"].values()) == ("ang", "exc", "neu", "sad", "fru", "hap")


def test_sessions_sort_naturally_numbers_before_names():
    sessions = ["dev", "10", "2", "train", "1"]
    assert sorted(sessions, key=session_sort_key) == ["1", "2", "10", "dev", "train"]
