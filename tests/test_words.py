from core.words import counted


def test_counts_agree_with_their_nouns_and_group_thousands():
    assert counted(1, "video") == "1 video"
    assert counted(0, "video") == "0 videos"
    assert counted(1234, "frame") == "1,234 frames"
    assert counted(2, "box", "boxes") == "2 boxes" and counted(1, "box", "boxes") == "1 box"


def test_a_name_someone_else_chose_is_shown_as_typed_in_markdown():
    """What a hostile video or folder name would make of a message (a link, an image fetched from
    another host, a heading, a colour) is escaped; what Streamlit finds in the rendered text
    whatever the escapes (a bare web address, :red[...], :material/...:) gets a word joiner. A
    browser check of the same: tests/test_fleet_browser.py."""
    from core.words import WORD_JOINER, markdown_code, markdown_literal

    hostile = "clip [help](https://e.com) ![i](http://e.com/b.png) **b** :red[x] www.e.com __init__ $x$ <b>"
    literal = markdown_literal(hostile)
    assert r"\[help\](https" + WORD_JOINER + "://e.com)" in literal and r"!\[i\](http" + WORD_JOINER in literal
    assert r"\*\*b\*\*" in literal and ":" + WORD_JOINER + r"red\[x\]" in literal and "www" + WORD_JOINER + ".e.com" in literal
    assert r"\_\_init\_\_ \$x\$ \<b\>" in literal
    assert markdown_literal("# title") == r"\# title" and markdown_literal("- a") == r"\- a" and markdown_literal("1. a") == r"1\. a"
    for after_an_underscore in ("clip _https://e.com/x", "cam_www.e.com.mp4"):  # Streamlit links these too
        assert WORD_JOINER in markdown_literal(after_an_underscore), after_an_underscore
    assert markdown_literal("a@e.com") == "a@" + WORD_JOINER + "e.com"  # no mailto: link
    assert markdown_literal("failed: HTTP 500 (s3://bucket/key)") == "failed: HTTP 500 (s3://bucket/key)", "plain text stays"
    assert markdown_literal("a\x1b[31mb") == r"a\\x1b\[31mb"
    assert markdown_code("a`b") == "``a`b``" and markdown_code("`x") == "`` `x ``" and markdown_code("p") == "`p`"
