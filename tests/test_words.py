from core.words import counted


def test_counts_agree_with_their_nouns_and_group_thousands():
    assert counted(1, "video") == "1 video"
    assert counted(0, "video") == "0 videos"
    assert counted(1234, "frame") == "1,234 frames"
    assert counted(2, "box", "boxes") == "2 boxes" and counted(1, "box", "boxes") == "1 box"
