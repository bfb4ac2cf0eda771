"""Evidence sentences, the loop check and the support check, with a hashed bag-of-words embedder."""

from __future__ import annotations

from dataclasses import dataclass

from rag.evidence import is_loop, names_field, select_evidence, sentence_support, sentences, supported, units
from tests.fakes import HashEmbedder


@dataclass
class Numbered:
    n: int
    text: str
    heading: str | None = None
    path: str | None = None


def test_wrapped_lines_join_and_sentences_split() -> None:
    text = "The office opens\nat eight. It closes at six!\n\nA second paragraph here."
    assert sentences(text) == ["The office opens at eight.", "It closes at six!", "A second paragraph here."]


def test_list_items_are_units_of_their_own() -> None:
    text = "Bring these items:\n- a badge for the door\n- the laptop charger\n1. first numbered step\n2) second step"
    assert sentences(text) == [
        "Bring these items:",
        "- a badge for the door",
        "- the laptop charger",
        "1. first numbered step",
        "2) second step",
    ]


def test_fragments_shorter_than_eight_characters_are_dropped() -> None:
    assert sentences("Yes. The answer is in room 4.") == ["The answer is in room 4."]


def test_cjk_full_stop_ends_a_sentence() -> None:
    assert sentences("会議室は三階にあります。 予約は受付でできます。") == [
        "会議室は三階にあります。",
        "予約は受付でできます。",
    ]


def test_select_evidence_ranks_the_answering_sentence_first() -> None:
    sources = [
        Numbered(1, "The canteen serves lunch from noon. The menu changes every week."),
        Numbered(2, "The vault code is 4711. Only Alice may know the vault code."),
    ]
    evidence = select_evidence("What is the vault code?", sources, HashEmbedder(), k=2)
    assert [(e.n, e.text) for e in evidence] == [
        (2, "The vault code is 4711."),
        (2, "Only Alice may know the vault code."),
    ]
    assert evidence[0].score > 1.0  # cosine plus half of the full word overlap


def test_select_evidence_returns_k_sentences_in_score_order() -> None:
    sources = [Numbered(1, "Alpha beta gamma delta. Printer toner is in room B. The printer is on floor two.")]
    evidence = select_evidence("Where is the printer toner?", sources, HashEmbedder(), k=3)
    assert len(evidence) == 3
    assert evidence[0].text == "Printer toner is in room B."
    assert [e.score for e in evidence] == sorted((e.score for e in evidence), reverse=True)


def test_a_list_item_shares_its_section_headings_words_when_asked() -> None:
    """The item giving the port names neither "VPN" nor "gateway"; its section heading does."""
    sources = [
        Numbered(1, "Ask the desk about the guest gateway.", "Handbook > 2. Guest Wi-Fi"),
        Numbered(2, "- Port: TCP 4443", "Handbook > 4. VPN gateway"),
    ]
    question = "Which port does the VPN gateway use?"
    plain = select_evidence(question, sources, HashEmbedder(), k=2)
    with_headings = select_evidence(question, sources, HashEmbedder(), k=2, heading_terms=True)
    assert plain[0].text == "Ask the desk about the guest gateway."
    assert with_headings[0].text == "- Port: TCP 4443"
    assert with_headings[0].score > plain[1].score  # only the nearest heading counts, not "Handbook"


def test_no_sentences_means_no_evidence() -> None:
    embedder = HashEmbedder()
    assert select_evidence("anything?", [Numbered(1, "short")], embedder) == []
    assert embedder.stats.texts == 0  # the embedder is not even asked


def test_the_same_line_again_and_again_is_a_loop() -> None:
    assert is_loop("The vault code is 4711.\nThe vault code is 4711.\nThe vault code is 4711.")
    assert is_loop("The vault code is 4711. The Vault code is 4711. the vault code is 4711. Other line here.")


def test_different_sentences_are_no_loop() -> None:
    assert not is_loop("The vault is in the cellar. The code is 4711. Alice keeps the key.")


def test_two_repeats_or_short_parts_are_no_loop() -> None:
    assert not is_loop("The vault code is 4711. The vault code is 4711.")
    assert not is_loop("Yes. Yes. Yes. Yes. Yes.")  # parts of ten characters or fewer do not count


def test_an_answer_made_of_the_sources_facts_is_supported() -> None:
    sources = ["The vault code is 4711 and only Alice knows it."]
    assert supported("The code is 4711; Alice knows it.", sources, "What is the vault code?")


def test_an_invented_number_is_not_supported() -> None:
    sources = ["The vault code is 4711 and only Alice knows it."]
    assert not supported("The code is 1234, ask Bob.", sources, "What is the vault code?")


def test_an_answer_that_only_repeats_the_question_is_not_supported() -> None:
    assert not supported("The vault code.", ["The vault code is 4711."], "What is the vault code?")


def test_a_looping_answer_is_not_supported() -> None:
    answer = "Alice knows the code 4711.\n" * 3
    assert not supported(answer, ["Alice knows the code 4711."], "Who knows it?")


def test_a_citation_marker_is_not_a_fact_to_support() -> None:
    assert supported("The vault code is 4711 [1].", ["The vault code is 4711."], "What is the vault code?")
    assert supported("It is 4711 [1, 2].", ["The vault code is 4711."], "What is the vault code?")
    assert not supported("Ask Bob [1].", ["The vault code is 4711."], "What is the vault code?")


def test_each_answer_sentence_names_the_source_span_supporting_it_or_none() -> None:
    sources = [
        Numbered(1, "Report incidents within 24 hours. Your vault is created on day one.\n- Shared vaults are Team-X."),
        Numbered(2, "The VPN gateway listens on TCP port 4443."),
    ]
    answer = "**Report incidents within 24 hours.** Your vault is created on day one. - Shared vaults are Team-X [1]. "
    answer += "The VPN listens on port 9999 [2]. Yes."
    support = sentence_support(answer, sources)
    assert [(s.n, s.span) for s in support] == [
        (1, "Report incidents within 24 hours."),
        (1, "Your vault is created on day one."),
        (1, "- Shared vaults are Team-X."),  # a list item the passage joined inline is a claim of its own
        (None, None),  # port 9999 is in no source
    ]  # and "Yes." states nothing to check


def test_an_option_asked_for_ranks_the_sentence_showing_one_first() -> None:
    sources = [Numbered(1, "This option reverses the sort order when useful.\n\n-r, --reverse reverse the order")]
    question = "Which option reverses the sort order?"
    assert select_evidence(question, sources, HashEmbedder(), k=1)[0].text.startswith("This option")
    assert select_evidence(question, sources, HashEmbedder(), k=1, form_weight=1.0)[0].text.startswith("-r")


CHECK = (
    "Rsyslog reads rsyslog.conf on startup.\n\nTo check a full configuration, run it as follows:\n\n::\n\n"
    " $ rsyslogd -f/etc/rsyslog.conf -N1\n\nProblems are reported to stderr."
)


def test_a_lead_in_is_joined_to_the_line_it_introduces_when_asked() -> None:
    assert units(CHECK) == sentences(CHECK)
    assert units(CHECK, lead_ins=True) == [
        "Rsyslog reads rsyslog.conf on startup.",
        "To check a full configuration, run it as follows: $ rsyslogd -f/etc/rsyslog.conf -N1",
        "Problems are reported to stderr.",
    ]


def test_lead_ins_in_german_and_japanese_and_only_one_sentence_joined() -> None:
    german = "Ein Eintrag sieht zum Beispiel\n\nPort 4443 aus. Danach folgt mehr."
    assert units(german, lead_ins=True) == ["Ein Eintrag sieht zum Beispiel Port 4443 aus.", "Danach folgt mehr."]
    japanese = "設定するには例えば、\n\nport = 4443 と書きます。\n\n次の節を見てください。"
    assert units(japanese, lead_ins=True)[0] == "設定するには例えば、 port = 4443 と書きます。"
    chained = "Do this:\n\nthen that:\n\nand finally this."
    assert units(chained, lead_ins=True) == ["Do this: then that:", "and finally this."]


def test_a_how_to_ranks_its_lead_in_with_the_command_first() -> None:
    question = "How do I check a full configuration?"
    alone = select_evidence(question, [Numbered(1, CHECK)], HashEmbedder(), k=1, form_weight=0.3)[0].text
    joined = select_evidence(question, [Numbered(1, CHECK)], HashEmbedder(), k=1, form_weight=0.3, lead_ins=True)
    assert "-N1" not in alone
    assert joined[0].text.endswith("-N1")


def test_a_sentence_shares_its_file_names_words_when_asked() -> None:
    """Two reference pages describe a setting of the same name; the one named for what was asked answers."""
    sources = [
        Numbered(1, "RateLimit.Burst sets the burst to 200 messages.", path="modules-imuxsock.txt"),
        Numbered(2, "Ratelimit.Burst sets the burst to 20000 messages.", path="modules/imjournal.txt"),
    ]
    question = "What is the default of imjournal's Ratelimit.Burst?"
    assert select_evidence(question, sources, HashEmbedder(), k=1)[0].n == 1  # without: the imuxsock page
    assert select_evidence(question, sources, HashEmbedder(), k=1, file_terms=True)[0].n == 2


def test_a_field_whose_label_the_question_names() -> None:
    question = "On which TCP port does the company VPN gateway accept connections?"
    assert names_field(question, "- Port: **TCP 4443** (chosen because many hotel networks block UDP 1194).")
    assert names_field(
        "What is the default value of SSLSessionCacheTimeout?", "**Default:** SSLSessionCacheTimeout 300"
    )
    assert not names_field(question, "- Gateway hostname: **gw-lej.vpn.weidenholm.example**")  # hostname: not asked
    assert not names_field(question, "The gateway accepts connections on port 4443.")  # no field
    assert not names_field("What are the opening hours of the garage?", "- Staffed hours: 07:30 to 18:00.")


def test_a_follow_ups_own_words_weigh_beside_its_standalone_question() -> None:
    sources = [
        Numbered(
            1,
            "Graceful restarts the Apache httpd daemon without dropping connections. "
            "Before the restart it checks the configuration files.",
        )
    ]
    follow_up = "What does it check before the restart?"
    standalone = f"Which apachectl command restarts the Apache httpd daemon gracefully? {follow_up}"
    alone = select_evidence(standalone, sources, HashEmbedder(), k=1)
    both = select_evidence(standalone, sources, HashEmbedder(), k=1, also=follow_up)
    assert alone[0].text.startswith("Graceful restarts")
    assert both[0].text == "Before the restart it checks the configuration files."


def test_an_identifier_in_the_question_is_matched_whole_when_asked() -> None:
    sources = [
        Numbered(1, "Syntax: SSLSessionTickets on|off Default: SSLSessionTickets on."),
        Numbered(2, "Syntax: SSLSessionCacheTimeout seconds Default: SSLSessionCacheTimeout 300."),
    ]
    question = "What is the default of SSLSessionCacheTimeout?"
    prefixed = select_evidence(question, sources, HashEmbedder(), k=2)
    whole = select_evidence(question, sources, HashEmbedder(), k=2, identifiers=True)
    assert prefixed[0].score - prefixed[1].score < whole[0].score - whole[1].score  # the prefix matched both
    assert whole[0].n == 2


def test_an_answer_sentence_may_join_two_or_three_source_sentences() -> None:
    sources = [Numbered(1, "Set this in main.cf:\n\n    debug_peer_list = 127.0.0.1\n\nThen reload the mail system.")]
    answer = "Set this in main.cf: debug_peer_list = 127.0.0.1 Then reload the mail system. [1]"
    [support] = sentence_support(answer, sources)
    assert support.n == 1 and support.span == answer.removesuffix(" [1]")
