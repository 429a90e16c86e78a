"""Rules of `split_inline_forward`: the forwarder's text, the quoted header block, the original body."""

from __future__ import annotations

from pipeline.domain.forwards import split_inline_forward


def test_text_without_a_forward_marker_is_returned_whole() -> None:
    """GIVEN a plain cover letter WHEN split THEN the whole text is the forwarder's and nothing is forwarded."""
    text = "各位好：\n附件是我院自查报告，请查收。\n"
    assert split_inline_forward(text) == (text, None)


def test_marker_inside_a_sentence_is_not_a_forward() -> None:
    """GIVEN a sentence that mentions 转发的邮件 WHEN split THEN nothing is forwarded (the marker must be a line
    of its own between dashes)."""
    text = "请查看我转发的邮件，谢谢。\n"
    assert split_inline_forward(text)[1] is None


def test_foxmail_chinese_block_gives_sender_subject_and_body() -> None:
    """GIVEN Foxmail's "-------- 转发的邮件 --------" block WHEN split THEN the own text is above the marker,
    the sender's name and address and the subject come from the block, the body is below it."""
    text = (
        "转给信息办，请查收。\n"
        "\n"
        "-------- 转发的邮件 --------\n"
        '发件人："番禺区第二人民医院信息科" <HeFeng@Panyu-2y.example>\n'
        "发送时间：2024年7月8日(星期一) 上午10:00\n"
        '收件人："wjj" <wjj@panyu-wjj.example>\n'
        "主题：番禺区第二人民医院电子健康码平台应用自查情况报告\n"
        "\n"
        "您好，附件为我院自查报告。\n"
        "何锋\n"
    )
    own, forward = split_inline_forward(text)
    assert own.strip() == "转给信息办，请查收。" and "转发的邮件" not in own
    assert forward is not None
    assert forward.sender_name == "番禺区第二人民医院信息科"
    assert forward.sender_address == "hefeng@panyu-2y.example"  # lower-cased
    assert forward.subject == "番禺区第二人民医院电子健康码平台应用自查情况报告"
    assert forward.body == "\n您好，附件为我院自查报告。\n何锋"


def test_gmail_english_block_is_read_the_same_way() -> None:
    """GIVEN Gmail's "---------- Forwarded message ---------" block with From:/Date:/Subject:/To: WHEN split
    THEN sender and subject are read from it and the block is not part of the body."""
    text = (
        "FYI\n"
        "---------- Forwarded message ---------\n"
        "From: Zhou Xia <xxk@syshosp.example>\n"
        "Date: Mon, Jul 8, 2024 at 10:00 AM\n"
        "Subject: 自查报告\n"
        "To: <xxb@gz.gov.cn>\n"
        "\n"
        "附件为自查报告。\n"
    )
    own, forward = split_inline_forward(text)
    assert own == "FYI\n"
    assert forward is not None
    assert (forward.sender_name, forward.sender_address, forward.subject) == (
        "Zhou Xia",
        "xxk@syshosp.example",
        "自查报告",
    )
    assert forward.body.strip() == "附件为自查报告。"


def test_outlook_block_with_a_sent_line_still_gives_the_subject() -> None:
    """GIVEN Outlook's "-----Original Message-----" block From:/Sent:/To:/Subject: WHEN split
    THEN the subject below the Sent: line is read."""
    text = (
        "-----Original Message-----\nFrom: Zhou Xia <xxk@syshosp.example>\nSent: Monday, July 8, 2024 10:00 AM\n"
        "To: xxb@gz.gov.cn\nSubject: 自查报告\n\n附件为自查报告。\n"
    )
    forward = split_inline_forward(text)[1]
    assert forward is not None and forward.subject == "自查报告"


def test_qq_mail_original_block_with_full_width_colons() -> None:
    """GIVEN QQ Mail's "------------------ 原始邮件 ------------------" with 发件人: and full-width colons
    WHEN split THEN the address is read."""
    text = '------------------ 原始邮件 ------------------\n发件人:  "何军"<xxk@zoc.example>;\n发送时间：2024年7月8日\n主题：自查报告\n\n正文\n'
    forward = split_inline_forward(text)[1]
    assert (
        forward is not None and forward.sender_address == "xxk@zoc.example" and forward.subject == "自查报告"
    )


def test_html_escaped_angle_brackets_in_the_sender_are_decoded() -> None:
    """GIVEN a sender field rendered from HTML ("&lt;addr&gt;") WHEN split THEN the address is read."""
    text = "---原始邮件---\n发件人: 周霞 &lt;xxk@syshosp.example&gt;\n主题: 报告\n\n正文\n"
    forward = split_inline_forward(text)[1]
    assert (
        forward is not None
        and forward.sender_address == "xxk@syshosp.example"
        and forward.sender_name == "周霞"
    )


def test_bare_address_without_brackets_is_read() -> None:
    """GIVEN "From: xxk@zoc.example" with no display name WHEN split THEN the address is read, the name empty."""
    forward = split_inline_forward("---------- Forwarded message ---------\nFrom: xxk@zoc.example\n\nbody\n")[
        1
    ]
    assert forward is not None and (forward.sender_name, forward.sender_address) == ("", "xxk@zoc.example")


def test_first_marker_decides_and_the_first_value_of_a_field_wins() -> None:
    """GIVEN a forward of a forward WHEN split THEN the outer block's sender is the forwarded sender and the
    inner block stays in its body."""
    text = (
        "-------- 转发的邮件 --------\n发件人: 外层 <outer@a.example>\n主题: 外层主题\n\n外层正文\n"
        "-------- 转发的邮件 --------\n发件人: 内层 <inner@b.example>\n主题: 内层主题\n\n内层正文\n"
    )
    forward = split_inline_forward(text)[1]
    assert (
        forward is not None and forward.sender_address == "outer@a.example" and forward.subject == "外层主题"
    )
    assert "inner@b.example" in forward.body and "内层正文" in forward.body


def test_block_without_fields_forwards_an_unknown_sender() -> None:
    """GIVEN a marker followed directly by text WHEN split THEN a forward is recognised with no sender
    and the whole text below the marker as its body."""
    forward = split_inline_forward("看一下\n-------- 转发的邮件 --------\n附件为报告。\n")[1]
    assert forward is not None and forward.sender_address == "" and forward.body == "附件为报告。"
