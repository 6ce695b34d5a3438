#!/usr/bin/env python3
"""Checks mailvault's read-only IMAP view with Python's imaplib.

Usage: imaplib_check.py HOST PORT EXPECTED.json

imaplib shares no code with the server (go-imap): it is an independent
client, and a strict one about some things (it raises on a mailbox that
turns read-only unless it asked for read-only). EXPECTED.json is written by
TestImaplib (imaplib_test.go): the folders in UTF-8 and in modified UTF-7,
every message's bytes (base64 in the JSON), the sections of the multipart
message, and searches with their answers.

One line per check; the first failure prints what was seen and exits 1.
Only the standard library is used.
"""

import base64
import email.header
import hashlib
import imaplib
import json
import re
import sys

checks = 0


def ok(name, cond, seen=None):
    global checks
    if not cond:
        print("FAIL %s" % name)
        if seen is not None:
            print("  seen: %r" % (seen,))
        sys.exit(1)
    checks += 1
    print("ok   %s" % name)


def b64(s):
    return base64.b64decode(s) if s else b""


def mutf7(name):
    """Modified UTF-7 of RFC 3501 section 5.1.3, written here from the RFC
    so that the names LIST sends are checked against a second encoder."""
    out, run = [], []

    def flush():
        if run:
            raw = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


# A small reader of IMAP data (RFC 3501 section 4): lists, quoted strings,
# literals, NIL and atoms (an atom may carry a [section] with spaces and
# parentheses, and a <partial>). Used for FETCH, BODYSTRUCTURE and ESEARCH.


class Parser:
    def __init__(self, data):
        self.b = data
        self.i = 0

    def ws(self):
        while self.i < len(self.b) and self.b[self.i] in b" \r\n":
            self.i += 1

    def value(self):
        self.ws()
        if self.i >= len(self.b):
            raise ValueError("end of data at %d" % self.i)
        c = self.b[self.i:self.i + 1]
        if c == b"(":
            self.i += 1
            out = []
            while True:
                self.ws()
                if self.b[self.i:self.i + 1] == b")":
                    self.i += 1
                    return out
                out.append(self.value())
        if c == b")":
            raise ValueError("unexpected ) at %d" % self.i)
        if c == b'"':
            self.i += 1
            s = bytearray()
            while True:
                ch = self.b[self.i:self.i + 1]
                if ch == b"":
                    raise ValueError("unterminated quoted string")
                self.i += 1
                if ch == b"\\":
                    s += self.b[self.i:self.i + 1]
                    self.i += 1
                elif ch == b'"':
                    return bytes(s)
                else:
                    s += ch
        if c == b"{":
            m = re.compile(rb"\{(\d+)\+?\}\r\n").match(self.b, self.i)
            if not m:
                raise ValueError("bad literal at %d" % self.i)
            n = int(m.group(1))
            self.i = m.end()
            lit = self.b[self.i:self.i + n]
            if len(lit) != n:
                raise ValueError("short literal")
            self.i += n
            return lit
        start = self.i
        depth = 0
        while self.i < len(self.b):
            ch = self.b[self.i:self.i + 1]
            if ch == b"[":
                depth += 1
            elif ch == b"]":
                depth -= 1
            elif depth == 0 and ch in b" ()\r\n":
                break
            self.i += 1
        atom = self.b[start:self.i]
        if atom == b"":
            raise ValueError("empty atom at %d" % start)
        return None if atom.upper() == b"NIL" else atom.decode("ascii", "replace")


def wire_messages(data):
    """imaplib's FETCH data back into one wire text per message: a tuple is
    (text up to and including {n}, literal), a bytes item ends a message."""
    msgs, cur = [], b""
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):
            cur += item[0] + b"\r\n" + item[1]
        else:
            msgs.append(cur + item)
            cur = b""
    if cur:
        msgs.append(cur)
    return msgs


def fetch(M, uid, items):
    """UID FETCH uid items: {ITEM: value} of the one message answered."""
    typ, data = M.uid("FETCH", str(uid), items)
    ok("UID FETCH %s %s answers OK" % (uid, items), typ == "OK", data)
    msgs = wire_messages(data)
    ok("UID FETCH %s %s answers one message" % (uid, items), len(msgs) == 1, data)
    p = Parser(msgs[0])
    p.value()  # sequence number
    kv = p.value()
    out = {}
    for k, v in zip(kv[0::2], kv[1::2]):
        out[k.upper()] = v
    return out


def flags_of(v):
    return sorted(f.upper() for f in v)


def parse_list(line):
    m = re.match(rb'\((?P<attrs>[^)]*)\) (?P<delim>"[^"]*"|NIL) (?P<name>.*)$', line)
    if not m:
        return None
    name = m.group("name")
    if name.startswith(b'"'):
        name = Parser(name).value()
    elif name.startswith(b"{"):
        raise ValueError("literal name in %r" % line)
    return m.group("attrs").decode().split(), m.group("delim"), name.decode("ascii")


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(path, encoding="utf-8") as fh:
        exp = json.load(fh)
    folders = exp["folders"]
    inbox = next(f for f in folders if f["wire"] == exp["inbox"])
    for f in folders:
        ok("mUTF-7 of %s is %s (Python's encoder agrees with the test's)" % (f["name"], f["wire"]),
           mutf7(f["name"]) == f["wire"], mutf7(f["name"]))

    M = imaplib.IMAP4(host, port, timeout=30)

    # CAPABILITY: before login imaplib reads it itself; after login the
    # list grows (go-imap lists IDLE, NAMESPACE, ESEARCH once authenticated).
    ok("CAPABILITY before login has IMAP4rev1", "IMAP4REV1" in M.capabilities, M.capabilities)
    ok("LOGIN is not disabled on loopback", "LOGINDISABLED" not in M.capabilities, M.capabilities)
    typ, data = M.login(exp["user"], exp["password"])
    ok("LOGIN", typ == "OK", data)
    typ, data = M.capability()
    caps = data[0].decode().upper().split()
    for c in ("IMAP4REV1", "IDLE", "NAMESPACE", "ESEARCH"):
        ok("CAPABILITY after login lists %s" % c, c in caps, caps)
    for c in ("IMAP4REV2", "CONDSTORE", "QRESYNC", "UIDPLUS", "MOVE"):
        ok("CAPABILITY does not claim %s" % c, c not in caps, caps)

    typ, data = M.namespace()
    ok("NAMESPACE: one personal namespace, prefix \"\", delimiter /",
       typ == "OK" and data[0].startswith(b'(("" "/"))'), data)

    # LIST "" "*": the folders, mUTF-7 encoded, and their \Noselect parents.
    typ, data = M.list('""', "*")
    ok('LIST "" "*" answers OK', typ == "OK", data)
    listed = {}
    for line in data:
        parsed = parse_list(line)
        ok("LIST line parses: %r" % line, parsed is not None, line)
        attrs, delim, name = parsed
        ok("LIST %s: delimiter \"/\"" % name, delim == b'"/"', line)
        ok("LIST %s: 7-bit name (mUTF-7, not UTF-8)" % name, all(ord(c) < 0x80 for c in name), line)
        listed[name] = [a.lower() for a in attrs]
    want_names = sorted([f["wire"] for f in folders] + exp["parents"])
    ok("LIST names are the folders and parents", sorted(listed) == want_names, sorted(listed))
    for p in exp["parents"]:
        ok("LIST %s is \\Noselect" % p, "\\noselect" in listed[p], listed[p])
    for f in folders:
        ok("LIST %s is selectable" % f["wire"], "\\noselect" not in listed[f["wire"]], listed[f["wire"]])
    ok("no top-level INBOX", "INBOX" not in listed, sorted(listed))
    typ, data = M.select("INBOX", readonly=True)
    ok("EXAMINE INBOX answers NO [NONEXISTENT]", typ == "NO" and data[0].startswith(b"[NONEXISTENT]"), (typ, data))

    # STATUS of every folder, by its encoded name.
    for f in folders:
        typ, data = M.status(quote(f["wire"]), "(MESSAGES UIDVALIDITY UIDNEXT)")
        want_status = "MESSAGES %d UIDVALIDITY %d UIDNEXT %d" % (
            len(f["messages"]), f["uidvalidity"], f["messages"][-1]["uid"] + 1)
        got = data[0].decode("ascii", "replace") if typ == "OK" else ""
        ok("STATUS %s: %s" % (f["wire"], want_status),
           all(part in got for part in re.findall(r"\w+ \d+", want_status)), (typ, data))

    # SELECT, as a client that wants to write would send it. The tagged OK
    # must carry [READ-ONLY] (RFC 3501 6.3.1): imaplib.select() discards the
    # tagged text, so this one SELECT goes through _simple_command, which
    # returns it. Untagged responses are in M.untagged_responses (imaplib
    # files the tagged response code there too, under READ-ONLY).
    M.untagged_responses = {}
    typ, data = M._simple_command("SELECT", quote(inbox["wire"]))
    ok("SELECT %s answers OK" % inbox["wire"], typ == "OK", data)
    ok("SELECT: the tagged OK carries [READ-ONLY]", data[0].upper().startswith(b"[READ-ONLY]"), data)
    ur = M.untagged_responses
    ok("SELECT: READ-ONLY response code recorded", "READ-ONLY" in ur, ur)
    ok("SELECT: untagged OK [PERMANENTFLAGS ()]", ur.get("PERMANENTFLAGS") == [b"()"], ur.get("PERMANENTFLAGS"))
    ok("SELECT: no READ-WRITE", "READ-WRITE" not in ur, ur)
    ok("SELECT: EXISTS %d" % len(inbox["messages"]), ur.get("EXISTS") == [str(len(inbox["messages"])).encode()], ur.get("EXISTS"))
    ok("SELECT: UIDVALIDITY %d" % inbox["uidvalidity"], ur.get("UIDVALIDITY") == [str(inbox["uidvalidity"]).encode()], ur.get("UIDVALIDITY"))
    ok("SELECT: UIDNEXT %d" % (inbox["messages"][-1]["uid"] + 1),
       ur.get("UIDNEXT") == [str(inbox["messages"][-1]["uid"] + 1).encode()], ur.get("UIDNEXT"))
    flags_line = (ur.get("FLAGS") or [b""])[0].decode()
    ok("SELECT: FLAGS lists $Expunged and the keywords in use",
       all(k in flags_line for k in ("$Expunged", "$Work", "$Later", "\\Seen")), flags_line)

    # The public select() must see the same: imaplib raises IMAP4.readonly
    # when a mailbox it SELECTed (not EXAMINEd) answers READ-ONLY.
    try:
        M.select(quote(inbox["wire"]))
        ok("imaplib select() raises IMAP4.readonly", False, M.untagged_responses)
    except imaplib.IMAP4.readonly as e:
        ok("imaplib select() raises IMAP4.readonly (%s)" % e, True)
    ok("imaplib is in the SELECTED state", M.state == "SELECTED", M.state)
    # From here on imaplib is told what it learned, as select(readonly=True)
    # would have set it; otherwise it refuses every further command.
    M.is_readonly = True

    # Every message of every folder: BODY.PEEK[] byte-exact, RFC822.SIZE,
    # FLAGS (the expunged copy has $Expunged), and SELECT of the encoded
    # name works (EXAMINE too, through imaplib's readonly=True).
    for f in folders:
        if f is not inbox:
            typ, data = M.select(quote(f["wire"]), readonly=True)
            ok("EXAMINE %s (by its mUTF-7 name)" % f["wire"], typ == "OK" and data == [str(len(f["messages"])).encode()], (typ, data))
        for m in f["messages"]:
            raw = b64(m["raw"])
            got = fetch(M, m["uid"], "(UID RFC822.SIZE FLAGS BODY.PEEK[])")
            ok("%s UID %d: UID" % (f["wire"], m["uid"]), got.get("UID") == str(m["uid"]), got.get("UID"))
            body = got.get("BODY[]")
            ok("%s UID %d: BODY[] is the stored bytes (%d bytes, sha256 %s)" % (
                f["wire"], m["uid"], len(raw), hashlib.sha256(raw).hexdigest()[:12]), body == raw,
               None if body is None else (len(body), body[:200]))
            ok("%s UID %d: RFC822.SIZE %d" % (f["wire"], m["uid"], len(raw)), got.get("RFC822.SIZE") == str(len(raw)), got.get("RFC822.SIZE"))
            ok("%s UID %d: FLAGS %s" % (f["wire"], m["uid"], m["flags"]),
               flags_of(got.get("FLAGS", [])) == flags_of(m["flags"]), got.get("FLAGS"))
            # FETCH BODY.PEEK[] must not have set \Seen.
            again = fetch(M, m["uid"], "(FLAGS)")
            ok("%s UID %d: flags unchanged after the read" % (f["wire"], m["uid"]),
               flags_of(again.get("FLAGS", [])) == flags_of(m["flags"]), again.get("FLAGS"))

    # Back to the inbox (EXAMINE) for sections, structure and searches.
    typ, data = M.select(quote(inbox["wire"]), readonly=True)
    ok("EXAMINE %s" % inbox["wire"], typ == "OK", data)
    mp = exp["multipart"]
    uid = mp["uid"]
    raw = b64(next(m for m in inbox["messages"] if m["uid"] == uid)["raw"])
    sections = [
        ("BODY[HEADER]", mp["header"]),
        ("BODY[1]", mp["part1"]),
        ("BODY[2.MIME]", mp["part2_mime"]),
        ("BODY[2]", mp["part2"]),
        ("BODY[3]", mp["part3"]),
        ("BODY[3.HEADER]", mp["part3_header"]),
        ("BODY[3.TEXT]", mp["part3_text"]),
    ]
    for sec, want_b64 in sections:
        want = b64(want_b64)
        got = fetch(M, uid, "(" + sec.replace("BODY[", "BODY.PEEK[") + ")")
        ok("UID %d %s: %d exact bytes" % (uid, sec, len(want)), got.get(sec) == want, got.get(sec))
    got = fetch(M, uid, "(BODY.PEEK[2])")
    ok("UID %d BODY[2] decodes (base64) to the attachment" % uid,
       base64.b64decode(got.get("BODY[2]") or b"") == b64(mp["attachment"]), None)
    for spec, want in (("<0.10>", raw[:10]), ("<10.25>", raw[10:35]), ("<%d.100>" % (len(raw) - 5), raw[-5:]),
                       ("<%d.10>" % (len(raw) + 10), b"")):
        got = fetch(M, uid, "(BODY.PEEK[]%s)" % spec)
        origin = spec[1:].split(".")[0]
        key = "BODY[]<%s>" % origin
        ok("UID %d BODY[]%s is %r" % (uid, spec, want[:12]), got.get(key) == want, got)

    # BODYSTRUCTURE: multipart/mixed of text/plain, application/pdf named
    # report.pdf (base64), and a message/rfc822 with its own envelope.
    got = fetch(M, uid, "(BODYSTRUCTURE)")
    bs = got.get("BODYSTRUCTURE")
    ok("BODYSTRUCTURE parses to a list", isinstance(bs, list), got)
    # body-type-mpart: the parts (lists), then the subtype, then extensions.
    n = next((i for i, p in enumerate(bs) if not isinstance(p, list)), len(bs))
    parts, subtype = bs[:n], (bs[n] if n < len(bs) else None)
    ok("BODYSTRUCTURE: multipart/mixed of 3 parts", len(parts) == 3 and (subtype or b"").upper() == b"MIXED", bs)
    t1, t2, t3 = parts
    ok("part 1 is text/plain quoted-printable",
       t1[0].upper() == b"TEXT" and t1[1].upper() == b"PLAIN" and t1[5].upper() == b"QUOTED-PRINTABLE", t1)
    ok("part 2 is application/pdf base64", t2[0].upper() == b"APPLICATION" and t2[1].upper() == b"PDF" and t2[5].upper() == b"BASE64", t2)
    params = dict(zip([k.upper() for k in t2[2][0::2]], t2[2][1::2])) if t2[2] else {}
    ok("part 2's type parameter NAME is %s" % mp["attachment_name"], params.get(b"NAME") == mp["attachment_name"].encode(), t2[2])
    ok("part 2's size is its encoded size", t2[6] == str(len(b64(mp["part2"]))), (t2[6], len(b64(mp["part2"]))))
    disp = next((x for x in t2[7:] if isinstance(x, list) and x and isinstance(x[0], bytes) and x[0].upper() == b"ATTACHMENT"), None)
    ok("part 2's disposition is attachment; filename=%s" % mp["attachment_name"],
       disp is not None and dict(zip([k.upper() for k in disp[1][0::2]], disp[1][1::2])).get(b"FILENAME") == mp["attachment_name"].encode(), t2)
    ok("part 3 is message/rfc822", t3[0].upper() == b"MESSAGE" and t3[1].upper() == b"RFC822", t3)
    ok("part 3's envelope has the inner subject", isinstance(t3[7], list) and t3[7][1] == mp["inner_subject"].encode(), t3[7] if len(t3) > 7 else t3)
    ok("part 3's body structure is text/plain", isinstance(t3[8], list) and t3[8][0].upper() == b"TEXT", t3[8] if len(t3) > 8 else t3)

    # ENVELOPE of the 8-bit message: the subject's bytes survive.
    got = fetch(M, 2, "(ENVELOPE)")
    env = got.get("ENVELOPE")
    ok("ENVELOPE of the 8-bit message parses", isinstance(env, list) and len(env) >= 10, got)
    want_subject = re.search(rb"^Subject: (.*?)\r\n", b64(inbox["messages"][1]["raw"]), re.M).group(1)
    # Without ENABLE UTF8=ACCEPT the server may send the raw UTF-8 (in a
    # literal) or downgrade it to an RFC 2047 encoded-word (RFC 6855
    # section 3, go-imap's choice); either way the text must be the same.
    text = "".join(p.decode(cs or "ascii") if isinstance(p, bytes) else p
                   for p, cs in email.header.decode_header(env[1].decode("utf-8")))
    ok("ENVELOPE subject of the 8-bit message reads %r (sent as %r)" % (text, env[1]),
       text == want_subject.decode("utf-8"), env[1])

    # Searches. A literal goes through imaplib's M.literal, sent as a
    # synchronizing literal after the server's "+".
    current = inbox["wire"]
    for s in exp["searches"]:
        if s["folder"] != current:
            typ, data = M.select(quote(s["folder"]), readonly=True)
            ok("EXAMINE %s" % s["folder"], typ == "OK", data)
            current = s["folder"]
        args = list(s["args"])
        label = ("UID SEARCH " if s["uid"] else "SEARCH ") + " ".join(args)
        if s.get("literal"):
            M.literal = s["literal"].encode("utf-8")
            label += " {%s}" % s["literal"]
        if s["uid"]:
            typ, data = M.uid("SEARCH", *args)
        else:
            typ, data = M.search(None, *args)
        got = [int(x) for x in (data[0] or b"").split()] if typ == "OK" else None
        ok("%s in %s = %s" % (label, s["folder"], s["want"]), got == s["want"], (typ, data))

    # ESEARCH (RFC 4731): imaplib files the answer under ESEARCH.
    if current != inbox["wire"]:
        M.select(quote(inbox["wire"]), readonly=True)
    M.untagged_responses.pop("ESEARCH", None)
    typ, data = M.uid("SEARCH", "RETURN", "(MIN MAX COUNT)", "ALL")
    es = M.untagged_responses.pop("ESEARCH", [None])[0]
    ok("UID SEARCH RETURN (MIN MAX COUNT) ALL answers OK with an ESEARCH", typ == "OK" and es is not None, (typ, data, es))
    p = Parser(es)
    items = []
    while True:
        p.ws()
        if p.i >= len(p.b):
            break
        items.append(p.value())
    corr = items[0] if items and isinstance(items[0], list) else None
    ok("ESEARCH carries its command's tag", corr is not None and corr[0].upper() == "TAG", items)
    rest = [x.upper() if isinstance(x, str) else x for x in items[1:]]
    ok("ESEARCH is a UID answer", rest[:1] == ["UID"], items)
    kv = dict(zip(rest[1::2], rest[2::2]))
    uids = [m["uid"] for m in inbox["messages"]]
    ok("ESEARCH MIN %d MAX %d COUNT %d" % (min(uids), max(uids), len(uids)),
       kv == {"MIN": str(min(uids)), "MAX": str(max(uids)), "COUNT": str(len(uids))}, items)
    M.untagged_responses.pop("ESEARCH", None)
    typ, data = M.uid("SEARCH", "RETURN", "(COUNT)", "KEYWORD", "$Expunged")
    es = M.untagged_responses.pop("ESEARCH", [b""])[0]
    ok("UID SEARCH RETURN (COUNT) KEYWORD $Expunged: COUNT 1", typ == "OK" and es.upper().endswith(b"COUNT 1"), (typ, es))

    # The expunged copy by sequence number: FLAGS through FETCH n.
    e = exp["expunged"]
    typ, data = M.fetch(str(e["seq"]), "(UID FLAGS)")
    ok("FETCH %d (UID FLAGS): UID %d with $Expunged" % (e["seq"], e["uid"]),
       typ == "OK" and b"UID %d" % e["uid"] in data[0] and b"$Expunged" in data[0], data)

    # Every write answers NO [NOPERM], in a SELECTed (not EXAMINEd) folder.
    M.untagged_responses = {}
    typ, data = M._simple_command("SELECT", quote(inbox["wire"]))
    ok("SELECT %s again" % inbox["wire"], typ == "OK" and data[0].upper().startswith(b"[READ-ONLY]"), data)
    M.state = "SELECTED"
    other = next(f for f in folders if f is not inbox)["wire"]
    writes = [
        ("STORE 1 +FLAGS (\\Deleted)", lambda: M.store("1", "+FLAGS", "(\\Deleted)")),
        ("STORE 1 FLAGS (\\Seen)", lambda: M.store("1", "FLAGS", "(\\Seen)")),
        ("UID STORE 2 +FLAGS (\\Seen)", lambda: M.uid("STORE", "2", "+FLAGS", "(\\Seen)")),
        ("COPY 1 " + other, lambda: M.copy("1", quote(other))),
        ("UID COPY 1 " + other, lambda: M.uid("COPY", "1", quote(other))),
        ("MOVE 1 " + other, lambda: M._simple_command("MOVE", "1", quote(other))),
        ("UID MOVE 1 " + other, lambda: M.uid("MOVE", "1", quote(other))),
        ("EXPUNGE", lambda: M.expunge()),
        ("APPEND " + inbox["wire"], lambda: M.append(quote(inbox["wire"]), "(\\Seen)", None,
                                                      b"From: x@example.org\r\nSubject: injected\r\n\r\nhello\r\n")),
        ("APPEND " + other, lambda: M.append(quote(other), None, None, b"Subject: x\r\n\r\ny\r\n")),
        ("CREATE carol/Neu", lambda: M.create(quote("carol/Neu"))),
        ("CREATE " + mutf7("carol/Entwürfe/Älter"), lambda: M.create(quote(mutf7("carol/Entwürfe/Älter")))),
        ("DELETE " + other, lambda: M.delete(quote(other))),
        ("DELETE " + inbox["wire"], lambda: M.delete(quote(inbox["wire"]))),
        ("RENAME %s carol/Anders" % inbox["wire"], lambda: M.rename(quote(inbox["wire"]), quote("carol/Anders"))),
    ]
    for label, do in writes:
        try:
            typ, data = do()
        except imaplib.IMAP4.error as err:
            ok("%s answers NO [NOPERM]" % label, False, err)
        ok("%s answers NO [NOPERM]" % label, typ == "NO" and (data[0] or b"").upper().startswith(b"[NOPERM]"), (typ, data))
    ok("no EXPUNGE was announced by the writes", "EXPUNGE" not in M.untagged_responses, M.untagged_responses.get("EXPUNGE"))

    # CLOSE of a SELECTed folder removes nothing (the patched go-imap).
    typ, data = M.close()
    ok("CLOSE answers OK", typ == "OK", data)
    ok("imaplib is back in the AUTH state", M.state == "AUTH", M.state)
    typ, data = M.status(quote(inbox["wire"]), "(MESSAGES)")
    ok("after CLOSE %s still holds %d messages" % (inbox["wire"], len(inbox["messages"])),
       typ == "OK" and b"MESSAGES %d" % len(inbox["messages"]) in data[0], data)
    ok("LIST after the writes shows no new folder", sorted(parse_list(l)[2] for l in M.list('""', "*")[1]) == want_names, M.list('""', "*"))

    # UNSELECT (RFC 3691) after an EXAMINE.
    typ, data = M.select(quote(exp["folders"][-1]["wire"]), readonly=True)
    ok("EXAMINE %s" % exp["folders"][-1]["wire"], typ == "OK", data)
    typ, data = M.unselect()
    ok("UNSELECT answers OK", typ == "OK", data)
    typ, data = M.status(quote(exp["folders"][-1]["wire"]), "(MESSAGES)")
    ok("after UNSELECT the folder still holds its messages",
       typ == "OK" and b"MESSAGES %d" % len(exp["folders"][-1]["messages"]) in data[0], data)

    typ, data = M.logout()
    ok("LOGOUT answers BYE", typ == "BYE", data)
    print("imaplib: all %d checks passed" % checks)


if __name__ == "__main__":
    main()
