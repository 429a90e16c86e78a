"""Which institution is each report FROM?  Weighed evidence, never "a name found anywhere".

Every report item (an attachment, a zip member, a forwarded message's
attachment, or the body itself) is scored from signals with weights: the
document's title and 报送单位 line weigh most, then its signature block,
header/footer and filename, then the mail's subject, signature, sender name
and known address.  A name merely mentioned in the text (a partner hospital)
weighs almost nothing; addressee lines ("市卫生健康委：") weigh nothing.  When
the best candidate is weak or contested, the item goes to review with the
reason; it is never guessed.

Mail from a district bureau or from the commission's own staff speaks for
others: its subject, sender and signature are not evidence of who wrote the
reports it carries.

Evidence nobody can type (issue 12): a display name claims nothing (neither an
institution nor a bureau: only a listed address makes a sender a bureau); a
forward header written inside a body, or an attached message's headers, are
evidence only when the outer sender is a known bureau or commission address —
from anyone else the forwarded report is judged by the outer sender's own
signals; a mail whose many items each merely mention an institution goes to
review as ONE item naming nobody, so it cannot hold anybody's reminders.  Each
report decision carries the sender's trust (`pipeline.domain.senders`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace

from parsers.types import DocumentText, LinkedFile, ParsedMessage, Part, PartKind
from pipeline.domain.authenticity import check_sender
from pipeline.domain.blocks import UNIT_LINE, near_stamp_name, signature_indexes, signature_lines, stamp_texts
from pipeline.domain.claims import W_PROXY, linked_note, proxy_claims, status_claim
from pipeline.domain.evidence import ACCEPT_SCORE, evidence_strength
from pipeline.domain.forwards import split_inline_forward
from pipeline.domain.recognition import Recognition, Recognizer, lines_of
from pipeline.domain.roster import Roster
from pipeline.domain.senders import is_own_address, with_sender_trust
from pipeline.domain.splitting import part_path, split_reports
from pipeline.labels import describe_problem
from pipeline.vocab import ItemPath, Kind
from storage.rows import Decision

W_TITLE = 6.0
W_UNIT_LINE = 6.0
W_SIGNATURE = 4.0
W_STAMP = 4.0  # the seal's ring text (OCR): as much as a signature
W_HEADER_FOOTER = 3.0
W_FILENAME = 3.0
W_META_TITLE = 2.0
W_MENTION = 0.5
W_SUBJECT = 3.0
W_SENDER_NAME = 2.0
W_BODY_SIGNATURE = 2.5
W_ADDRESS = 3.0
MAX_WEAK_ITEMS = 3  # more weak review items than this, naming several institutions: one review item
DOMINANCE = 2.0  # the best candidate must outweigh the runner-up this many times
UNTRUSTED_ADDRESS = "sender_address_untrusted"  # a known address whose authenticity check failed (weight 0)

_ADDRESSEE = re.compile(r"[:：]\s*$")
_SUBJECT_NOISE = re.compile(r"^\s*((re|fw|fwd|答复|回复|转发)\s*[:：]\s*)+", re.IGNORECASE)


@dataclass(frozen=True)
class AttributionFacts:
    """What attribution knows besides the message: who is who among senders."""

    own_domains: tuple[str, ...] = ()
    mailbox_address: str = ""
    addresses: dict[str, str] = field(default_factory=dict)  # sender address -> roster name
    bureau_addresses: dict[str, str] = field(default_factory=dict)  # sender address -> bureau name
    exempt: frozenset[str] = frozenset()
    authserv_id: str = ""  # only Authentication-Results stamped with this id are believed


@dataclass(frozen=True)
class AttributionResult:
    decisions: tuple[Decision, ...]

    @property
    def institutions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.institution for d in self.decisions if d.kind == Kind.REPORT and d.institution))


@dataclass
class _Evidence:
    items: list[dict] = field(default_factory=list)

    def add(self, signal: str, key: str, weight: float, text: str) -> None:
        self.items.append({"signal": signal, "institution": key, "weight": weight, "text": text[:80]})


@dataclass(frozen=True)
class _Sender:
    """Message-level context: who sent it and which of its signals may speak for a report."""

    speaks_for_itself: bool  # False for bureaus, the commission's staff, unknown forwarders
    bureau: str  # bureau name when a district bureau sent it
    signals: tuple[tuple[str, str, float, str], ...]  # (signal, key, weight, text)
    distrust: str = ""  # why the sender address is not evidence (SPF/DKIM/DMARC fail, two From:)


def attribute_message(
    parsed: ParsedMessage, roster: Roster, facts: AttributionFacts, recognizer: Recognizer
) -> AttributionResult:
    """All decisions for one message: report items with their institution, or why there are none.

    `recognizer` holds the campaign's rules (what a report of this campaign looks like).
    """
    if parsed.auto_reply:
        return AttributionResult((Decision(ItemPath.MESSAGE, Kind.UNRELATED, reason=f"自动邮件（{parsed.auto_reply}）"),))
    decisions = _collapse_weak(_Attributor(roster, facts, recognizer).message(parsed))
    check = check_sender(parsed, facts.authserv_id)
    return AttributionResult(with_sender_trust(tuple(decisions), address=parsed.sender.address, check=check,
                                               roster=roster, facts=facts))  # fmt: skip


def _collapse_weak(decisions: list[Decision]) -> list[Decision]:
    """Many items that each merely mention an institution are one review item naming nobody.

    A mail with 96 small files, each mentioning another institution, must not put 96
    institutions under review (review holds their reminders): it is one item for a clerk.
    """
    weak = [d for d in decisions if d.kind == Kind.NEEDS_REVIEW and d.readable and d.item_path != ItemPath.MESSAGE
            and evidence_strength(d, d.institution) < ACCEPT_SCORE]  # fmt: skip
    names = list(dict.fromkeys(d.institution for d in weak if d.institution))
    if len(weak) <= MAX_WEAK_ITEMS or len(names) < 2:
        return decisions
    shown = "、".join(names[:3]) + (f" 等 {len(names)} 家" if len(names) > 3 else "")
    collapsed = Decision(ItemPath.MESSAGE, Kind.NEEDS_REVIEW,
                         reason=f"{len(weak)} 个附件认不出报送机构，只提到机构名称（{shown}），证据不足，整封邮件待人工核对",
                         evidence=[{"signal": "weak_items", "institution": "", "weight": 0.0,
                                    "text": f"{len(weak)} 个附件"}])  # fmt: skip
    dropped = {id(d) for d in weak}
    return [collapsed, *(d for d in decisions if id(d) not in dropped)]


class _Attributor:
    def __init__(self, roster: Roster, facts: AttributionFacts, recognizer: Recognizer) -> None:
        self.roster = roster
        self.facts = facts
        self.recognizer = recognizer

    # -- messages -------------------------------------------------------------------------------

    def message(self, parsed: ParsedMessage, *, depth: int = 0, outer: _Sender | None = None) -> list[Decision]:
        if outer is not None and outer.speaks_for_itself:
            # An attached message from an ordinary sender: its headers are whatever that sender
            # typed, so its reports are judged by the outer sender's signals, not the inner From:.
            sender = outer
        else:
            distrust = check_sender(parsed, self.facts.authserv_id).reason
            sender = self.sender_context(parsed.sender.name, parsed.sender.address, parsed.subject,
                                         parsed.text_body, distrust=distrust)  # fmt: skip
            sender = self.claimed(sender, parsed)
        substantive = [p for p in parsed.attachments if not p.inline]
        single = len(substantive) + len(parsed.linked_files) == 1
        decisions: list[Decision] = []
        for part in substantive:
            decisions.extend(self.part(part, parsed, sender, single=single))
        for link in parsed.linked_files:
            decisions.extend(self.linked(link, parsed, sender, single=single))
        if not any(d.kind in (Kind.REPORT, Kind.NEEDS_REVIEW) for d in decisions):
            decisions.extend(self.body(parsed, sender, depth=depth))
        claim = status_claim(parsed.subject, parsed.text_body) if depth == 0 else ""
        if any(d.kind in (Kind.REPORT, Kind.NEEDS_REVIEW) for d in decisions):
            return [_with_claim(d, claim) for d in decisions]
        if claim:  # "我院已于7月8日报送" with no report in this mail: a clerk checks what was received
            known = next((s for s in sender.signals if s[0] == "sender_address"), None)
            return [Decision(ItemPath.MESSAGE, Kind.NEEDS_REVIEW, institution=self._key(known[1]) if known else "",
                             reason=f"来信称已报送：“{claim}”，本邮件没有报告，请核对是否漏收",
                             evidence=[_claim_evidence(claim)])]  # fmt: skip
        reason = self.no_report_reason(parsed, substantive, decisions)
        return [Decision(ItemPath.MESSAGE, Kind.UNRELATED, reason=reason)]

    def no_report_reason(self, parsed: ParsedMessage, substantive: list[Part], decisions: list[Decision]) -> str:
        item_reasons = [d.reason for d in decisions if d.reason]
        if self.recognizer.names_a_report(parsed.subject) and not substantive:
            return "主题称报送报告，但没有附件"
        if item_reasons:
            return "; ".join(dict.fromkeys(item_reasons))
        return "不含本次自查报告"

    def sender_context(self, name: str, address: str, subject: str, body: str, *, distrust: str = "") -> _Sender:
        """Who sent it: only a listed address (never a display name) makes a sender a bureau or the
        commission; an address our server failed is neither."""
        if not distrust:
            if is_own_address(address, own_domains=self.facts.own_domains, mailbox=self.facts.mailbox_address):
                return _Sender(False, "", ())
            bureau = self.facts.bureau_addresses.get(address, "")
            if bureau:
                return _Sender(False, bureau, ())
        signals: list[tuple[str, str, float, str]] = []
        known = self.facts.addresses.get(address)
        if known and distrust:  # kept as zero-weight evidence, so review can say why it was not used
            signals.append((UNTRUSTED_ADDRESS, known, 0.0, address))
        elif known:
            signals.append(("sender_address", known, W_ADDRESS, address))
        # The display name claims nothing: anyone can write "番禺区卫生健康局 <anyone@evil.example>".
        for mention in self.roster.index.find(_SUBJECT_NOISE.sub("", subject)):
            signals.append(("subject", mention.key, W_SUBJECT, subject))
        for line in signature_lines(body.splitlines()):
            for mention in self.roster.index.find(line):
                signals.append(("body_signature", mention.key, W_BODY_SIGNATURE, line))
        return _Sender(True, "", tuple(signals), distrust)

    def claimed(self, sender: _Sender, parsed: ParsedMessage) -> _Sender:
        """The sender's signals once "代××报送" is read: ××'s claim counts, the sender's own units do not.

        The claim names who the report is FROM; the sender's trust is still judged against ×× by
        `with_sender_trust` (a stranger's claim is counted but unconfirmed).
        """
        claims = [c for c in proxy_claims(parsed.subject, parsed.text_body, self.roster) if self._key(c.key)]
        if not claims:
            return sender
        keys = {self._key(c.key) for c in claims}
        own = tuple((sig, key, weight if self._key(key) in keys else 0.0, text) for sig, key, weight, text in sender.signals)
        made = tuple(("proxy_claim", c.key, W_PROXY, f"{c.text}（发件人 {parsed.sender.address or '未知'}）") for c in claims)
        return replace(sender, signals=own + made)

    # -- parts ----------------------------------------------------------------------------------

    def part(self, part: Part, parsed: ParsedMessage, sender: _Sender, *, single: bool) -> list[Decision]:
        if part.kind is PartKind.ARCHIVE:
            found: list[Decision] = []
            for child in part.children:
                found.extend(self.part(child, parsed, _Sender(False, sender.bureau, ()), single=False))
            if part.problem:
                found.append(Decision(part.path, Kind.NEEDS_REVIEW, reason=f"压缩包有问题：{describe_problem(part.problem)}", readable=False))
            blocked = next((c for c in part.walk() if c.kind is PartKind.UNREADABLE), None)
            if blocked is not None and not any(d.kind in (Kind.REPORT, Kind.NEEDS_REVIEW) for d in found):
                # Nothing inside could be read as a report: the archive's own name (and the mail, when it
                # is the only attachment) speaks for it, as for any unreadable attachment.
                found.extend(self.unreadable(replace(part, problem=blocked.problem), parsed, sender, single=single))
            return found
        if part.kind is PartKind.MESSAGE:
            if part.message is None:
                return [Decision(part.path, Kind.NEEDS_REVIEW, reason=describe_problem(part.problem) or "附带邮件无法读取", readable=False)]
            inner = self.message(part.message, depth=1, outer=sender)
            return [d for d in inner if d.item_path != ItemPath.MESSAGE] or []
        if part.kind is PartKind.DOCUMENT and part.document is not None:
            lines = lines_of(part.document)
            several = split_reports(lines, self.recognizer)
            if several:  # a compilation: each report is an item, like an attachment of a bundle
                return [self.report(part_path(part.path, n), "", None, seg, self.recognizer.recognise_text(seg), sender,
                                    single=False) for n, seg in enumerate(several, 1)]  # fmt: skip
            recognition = self.recognizer.recognise_text(lines, filename=part.filename)
            if not recognition.is_report:
                return [Decision(part.path, Kind.UNRELATED, reason=recognition.why)]
            return [self.report(part.path, part.filename, part.document, lines, recognition, sender, single=single)]
        return self.unreadable(part, parsed, sender, single=single)

    def unreadable(self, part: Part, parsed: ParsedMessage, sender: _Sender, *, single: bool) -> list[Decision]:
        problem = describe_problem(part.problem) or "无法读取"
        decision = self.by_name(part.path, part.filename, parsed, sender, single=single,
                                image=part.content_type.startswith("image/"))  # fmt: skip
        if decision is None:
            return [Decision(part.path, Kind.UNRELATED, reason=f"{problem}，且未标明是报告")]
        if decision.kind == Kind.REPORT:
            return [replace(decision, reason=f"附件无法读取：{problem}。已按文件名或邮件信息计入，请人工核对文件")]
        return [replace(decision, reason=f"附件无法读取：{problem}。{decision.reason}")]

    def linked(self, link: LinkedFile, parsed: ParsedMessage, sender: _Sender, *, single: bool) -> list[Decision]:
        """A "超大附件" link: counted by its file name like an unreadable attachment, never fetched."""
        note = linked_note(link)
        decision = self.by_name(link.path, link.filename, parsed, sender, single=single)
        if decision is None:
            return [Decision(link.path, Kind.UNRELATED, reason=f"{note}（未标明是报告）", readable=False)]
        evidence = [*decision.evidence, {"signal": "linked_file", "institution": decision.institution, "weight": 0.0,
                                         "text": f"{link.filename} {link.expires or '有效期未写明'}"[:80]}]  # fmt: skip
        counted = "已按文件名或邮件信息计入。" if decision.kind == Kind.REPORT else f"{decision.reason}。"
        return [replace(decision, reason=counted + note, evidence=evidence)]

    def by_name(self, path: str, filename: str, parsed: ParsedMessage, sender: _Sender, *, single: bool,
                image: bool = False) -> Decision | None:  # fmt: skip
        """An item nobody can read, weighed by its name (and the mail's signals when it is the only one);
        None when neither its name nor the mail says it is a report."""
        names_a_report = self.recognizer.names_a_report
        speaks = sender.speaks_for_itself or any(s[0] == "proxy_claim" for s in sender.signals)
        announces = names_a_report(filename) or (single and names_a_report(parsed.subject) and speaks)
        if not announces or image and not names_a_report(filename):
            return None
        evidence = _Evidence()
        scores: dict[str, float] = defaultdict(float)
        self._score_text("filename", _stem(filename), W_FILENAME, scores, evidence)
        if single:
            self._score_sender(sender, scores, evidence)
        return self.decide(path, scores, evidence, sections={}, readable=False, sender=sender)

    def body(self, parsed: ParsedMessage, sender: _Sender, *, depth: int) -> list[Decision]:
        own_part, forwarded = split_inline_forward(parsed.text_body)
        if forwarded is not None:
            # A typed forward header is evidence only from a bureau or the commission; from anyone
            # else the forwarded text is theirs and is judged by their own signals.
            inner_sender = sender if sender.speaks_for_itself else self.sender_context(
                forwarded.sender_name, forwarded.sender_address, forwarded.subject, forwarded.body)
            lines = [line.strip() for line in forwarded.body.splitlines() if line.strip()]
            recognition = self.recognizer.recognise_text(lines, is_body=True)
            if recognition.is_report:
                return [self.report(ItemPath.BODY, "", None, lines, recognition, inner_sender, single=True)]
        lines = [line.strip() for line in own_part.splitlines() if line.strip()]
        recognition = self.recognizer.recognise_text(lines, is_body=True)
        if recognition.is_report:
            return [self.report(ItemPath.BODY, "", None, lines, recognition, sender, single=True)]
        return []

    # -- scoring ------------------------------------------------------------------------------

    def report(
        self,
        path: str,
        filename: str,
        document: DocumentText | None,
        lines: list[str],
        recognition: Recognition,
        sender: _Sender,
        *,
        single: bool,
    ) -> Decision:
        evidence = _Evidence()
        scores: dict[str, float] = defaultdict(float)
        used: set[int] = set()
        if recognition.title:
            self._score_text("title", recognition.title, W_TITLE, scores, evidence)
            used.update(i for i, line in enumerate(lines) if line == recognition.title)
        for i, line in enumerate(lines):
            match = UNIT_LINE.search(line)
            if match and i not in used:
                self._score_text("unit_line", line[match.end() :], W_UNIT_LINE, scores, evidence)
                used.add(i)
        stamps = stamp_texts(document)
        for i, line in enumerate(lines):
            if line in stamps and i not in used:  # the red seal's ring text, read by OCR
                self._score_text("stamp", line, W_STAMP, scores, evidence)
                near = "" if self.roster.index.find(line) else near_stamp_name(line, self.roster)
                if near and self._key(near):  # a glyph or two misread on the ring: a little less sure
                    scores[self._key(near)] += W_STAMP - 1.0
                    evidence.add("stamp", self._key(near), W_STAMP - 1.0, line)
                used.add(i)
        for i in signature_indexes(lines):
            if i not in used:
                self._score_text("signature", lines[i], W_SIGNATURE, scores, evidence)
                used.add(i)
        if document is not None:
            for p in document.paragraphs:
                if p.where in ("header", "footer"):
                    self._score_text(p.where, p.text, W_HEADER_FOOTER, scores, evidence)
            if document.title:
                self._score_text("document_title", document.title, W_META_TITLE, scores, evidence)
        if filename:
            self._score_text("filename", _stem(filename), W_FILENAME, scores, evidence)
        mentioned: dict[str, float] = defaultdict(float)
        for i, line in enumerate(lines):
            if i in used or _ADDRESSEE.search(line):
                continue
            for mention in self.roster.index.find(line):
                key = self._key(mention.key)
                if key and mentioned[key] < W_MENTION * 2:
                    mentioned[key] += W_MENTION
                    scores[key] += W_MENTION
                    evidence.add("mention", key, W_MENTION, line)
        # The mail's own signals speak for its only report, or for a report that names nobody
        # when the sender speaks for itself (a hospital sending its own and its branch's reports).
        if single or not any(v > W_MENTION * 2 for v in scores.values()):
            self._score_sender(sender, scores, evidence)
        sections = self.recognizer.find_sections(lines)
        return self.decide(path, scores, evidence, sections=sections, readable=True, sender=sender)

    def _score_sender(self, sender: _Sender, scores: dict[str, float], evidence: _Evidence) -> None:
        seen: set[tuple[str, str]] = set()
        for signal, raw_key, weight, text in sender.signals:
            key = self._key(raw_key)
            if key and (signal, key) not in seen:
                seen.add((signal, key))
                if weight:
                    scores[key] += weight
                evidence.add(signal, key, weight, text)

    def _score_text(self, signal: str, text: str, weight: float, scores: dict[str, float], evidence: _Evidence) -> None:
        if _ADDRESSEE.search(text) and signal != "unit_line":
            return
        for key in dict.fromkeys(self._key(m.key) for m in self.roster.index.find(text)):
            if key:
                scores[key] += weight
                evidence.add(signal, key, weight, text)

    def _key(self, key: str) -> str:
        """The roster name a mention counts for ("" for bureaus off the roster and exempt rows)."""
        if key.startswith("bureau:") or key in self.facts.exempt:
            return ""
        return self.roster.group(key)[0]

    def decide(
        self,
        path: str,
        scores: dict[str, float],
        evidence: _Evidence,
        *,
        sections: dict,
        readable: bool,
        sender: _Sender,
    ) -> Decision:
        decision = self._decide(path, scores, evidence, sections=sections, readable=readable, sender=sender)
        untrusted = next((e for e in evidence.items if e["signal"] == UNTRUSTED_ADDRESS), None)
        if decision.kind == Kind.REPORT or untrusted is None or not sender.distrust:
            return decision
        # Would the address have decided it?  Then say so: review, not attribution by a forged address.
        key = untrusted["institution"]
        boosted = {**scores, key: scores.get(key, 0.0) + W_ADDRESS}
        would = self._decide(path, boosted, evidence, sections=sections, readable=readable, sender=sender)
        if would.kind == Kind.REPORT and would.institution == key:
            return replace(decision, kind=Kind.NEEDS_REVIEW, institution=key, reason=sender.distrust)
        return decision

    def _decide(
        self,
        path: str,
        scores: dict[str, float],
        evidence: _Evidence,
        *,
        sections: dict,
        readable: bool,
        sender: _Sender,
    ) -> Decision:
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        via = sender.bureau
        if not ranked:
            return Decision(path, Kind.NEEDS_REVIEW, reason="是报告，但认不出报送机构",
                            evidence=evidence.items, sections=sections, readable=readable, via_bureau=via)  # fmt: skip
        best, best_score = ranked[0]
        runner_score = ranked[1][1] if len(ranked) > 1 else 0.0
        name = best
        confidence = round(min(1.0, best_score / 8.0) * best_score / (best_score + runner_score), 3)
        if best_score < ACCEPT_SCORE:
            return Decision(path, Kind.NEEDS_REVIEW, institution=name, confidence=confidence,
                            reason=f"证据不足：可能是 {name}（得分 {best_score:g}）", evidence=evidence.items,
                            sections=sections, readable=readable, via_bureau=via)  # fmt: skip
        if runner_score and best_score < DOMINANCE * runner_score:
            rival = ranked[1][0]
            return Decision(path, Kind.NEEDS_REVIEW, institution=name, confidence=confidence,
                            reason=f"证据冲突：{name}（{best_score:g}）与 {rival}（{runner_score:g}）",
                            evidence=evidence.items, sections=sections, readable=readable, via_bureau=via)  # fmt: skip
        return Decision(path, Kind.REPORT, institution=name, confidence=confidence, reason="",
                        evidence=evidence.items, sections=sections, readable=readable, via_bureau=via)  # fmt: skip


def _stem(filename: str) -> str:
    return filename.rsplit(".", 1)[0] if "." in filename else filename


def _with_claim(decision: Decision, claim: str) -> Decision:
    """The decision with a "我院已…报送" claim in its evidence (weight 0: it proves nothing)."""
    return replace(decision, evidence=[*decision.evidence, _claim_evidence(claim)]) if claim else decision


def _claim_evidence(claim: str) -> dict:
    return {"signal": "status_claim", "institution": "", "weight": 0.0, "text": claim[:80]}
