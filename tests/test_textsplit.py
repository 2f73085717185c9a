from bot.textsplit import split_html, visible_length


def test_short_text_is_one_part():
    assert split_html("<b>hi</b> &amp; bye") == ["<b>hi</b> &amp; bye"]


def test_long_text_is_split_whole_at_line_ends_and_tags_reopen():
    line = "楼道灯坏了 &lt;急&gt; " * 20
    text = "<b>#12</b>\n<i>" + "\n".join([line] * 40) + "</i>"
    parts = split_html(text)
    assert len(parts) > 1
    assert all(visible_length(p) <= 4096 for p in parts)
    for part in parts:
        assert part.count("<i>") == part.count("</i>")
    joined = "".join(p.replace("<i>", "").replace("</i>", "") for p in parts)
    assert joined.replace("\n", "") == text.replace("<i>", "").replace("</i>", "").replace("\n", "")


def test_a_text_without_spaces_is_cut_by_length_never_inside_an_entity():
    text = "&amp;" * 5000
    parts = split_html(text)
    assert [visible_length(p) for p in parts] == [4096, 904]
    assert all(p.count("&amp;") * 5 == len(p) for p in parts)


def test_emoji_count_as_two_units():
    text = "😀" * 2100
    parts = split_html(text)
    assert [visible_length(p) for p in parts] == [4096, 104]
