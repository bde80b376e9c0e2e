#!/usr/bin/env python3
"""Turn text shipped in Debian packages into a BEIR-layout passage corpus.

Usage: passages.py EXTRACT_DIR OUT_CORPUS_JSONL OUT_COUNTS_TSV

EXTRACT_DIR holds one directory per Debian package, each unpacked with `dpkg-deb -x DEB
EXTRACT_DIR/<package>`. Sources read, when their package is present:

  gcide    dict-gcide     usr/share/dictd/gcide.*  GNU Collaborative Int. Dictionary of English
  wordnet  wordnet-base   usr/share/wordnet/data.* WordNet 3.0 synsets: lemmas, gloss, examples
  foldoc   dict-foldoc    usr/share/dictd/foldoc.* Free On-line Dictionary of Computing
  jargon   dict-jargon    usr/share/dictd/jargon.* Jargon File
  devil    dict-devil     usr/share/dictd/devil.*  The Devil's Dictionary (Bierce)
  pydoc    python3.11-doc usr/share/doc/python3.11/html  Python documentation (prose only)
  debref   debian-reference-en usr/share/debian-reference/*.en.html  Debian Reference (prose)
  perlpod  perl-doc       usr/share/perl/*/pod/*.pod  Perl documentation (prose, no code)
  man      manpages       usr/share/man  Linux man-pages (prose sections, no code/synopsis)
  mandev   manpages-dev   usr/share/man  Linux man-pages, sections 2 and 3
  perlman  perl-doc       usr/share/man/man3/*.3perl.gz  Perl module documentation
  pgdoc    postgresql-doc-15 usr/share/doc/postgresql-doc-15/html  PostgreSQL manual (prose)

OUT_COUNTS_TSV gets one line per source: package, source, passages, duplicates dropped,
mean words per passage.

Every source is a sequence of "articles" (a dictionary entry, a WordNet synset, a section of a
documentation page), each a list of paragraphs. Articles are cut into chunks of at most MAX_WORDS
words at paragraph (then sentence) boundaries; a continuation chunk is prefixed with the
article's headword. Chunks shorter than MIN_WORDS are merged with the following chunks of the same
source (neighbouring dictionary entries / synsets) until they reach MIN_WORDS. Passages with
fewer than DROP_WORDS words are dropped, and exact duplicates (case- and punctuation-insensitive)
are dropped, keeping the first.

The output order is deterministic: passages get ids "<source>-<n>" in source order, and the file
is sorted by sha1(id), a fixed pseudo-random interleaving so that any prefix (LIMIT) is a uniform
mix of all sources. Standard library only.
"""

import gzip
import hashlib
import html.parser
import json
import os
import re
import sys

MIN_WORDS = 30
TARGET_WORDS = 80
MAX_WORDS = 120
DROP_WORDS = 12

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
B64V = {c: i for i, c in enumerate(B64)}


def b64num(s):
    n = 0
    for c in s:
        n = n * 64 + B64V[c]
    return n


def ws(s):
    return re.sub(r"\s+", " ", s).strip()


# ---------------------------------------------------------------- dictd (gcide, foldoc, ...)

def dictd_articles(base):
    """Yield (headword, raw_text) for every distinct article of a dictd database, in file order."""
    with gzip.open(base + ".dict.dz", "rb") as f:
        data = f.read()
    spans = {}
    with open(base + ".index", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            head = parts[0]
            if head.startswith("00-database") or head.startswith("00database"):
                continue
            off, ln = b64num(parts[1]), b64num(parts[2])
            spans.setdefault((off, ln), head)
    for (off, ln) in sorted(spans):
        text = data[off:off + ln].decode("utf-8", errors="replace")
        yield spans[(off, ln)], text


def paragraphs(text):
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def clean_gcide(head, text):
    t = text
    t = t.replace("[ae]", "ae").replace("[AE]", "Ae").replace("[oe]", "oe").replace("[OE]", "Oe")
    t = re.sub(r"\\[^\\\n]*\\", " ", t)                 # \A*ban"don\ spellings
    t = re.sub(r"\(\s*\[[^\n]*?\)\s*,", ",", t)        # ([.a]*b[a^]n"d[u^]n), pronunciations
    prev = None
    while prev != t:                                    # [..] etymologies, [Obs.], [1913 Webster], escapes
        prev = t
        t = re.sub(r"\[[^\[\]]*\]", "", t)
    t = t.replace("{", "").replace("}", "")
    out = []
    for p in paragraphs(t):
        p = ws(p)
        p = re.sub(r"\s+([,.;:])", r"\1", p)
        p = re.sub(r"^[,.;:\s]+", "", p)
        if len(p.split()) < 2 and not out:
            # a bare headword line; keep it only as the article's first word
            out.append(p)
            continue
        if re.fullmatch(r"[\W\d_]*", p):
            continue
        out.append(p)
    return out


def clean_generic_dictd(head, text):
    t = text.replace("{", "").replace("}", "")
    t = re.sub(r"\(?https?://\S+\)?", " ", t)
    t = re.sub(r"<([^<>\s]*@[^<>\s]*)>", " ", t)        # e-mail addresses
    t = t.replace("<", "").replace(">", "")
    out = []
    for p in paragraphs(t):
        p = ws(p)
        if re.fullmatch(r"\(?\d{4}-\d\d-\d\d\)?\.?", p) or re.fullmatch(r"[\W\d_]*", p):
            continue
        out.append(p)
    # dictd articles start with the headword alone on a line; make it "Head: first paragraph"
    if len(out) >= 2 and out[0].lower() == head.lower():
        out = [out[0] + ": " + out[1]] + out[2:]
    return out


# ---------------------------------------------------------------- WordNet

POS = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}


def wordnet_articles(wndir):
    for name in ("data.noun", "data.verb", "data.adj", "data.adv"):
        path = os.path.join(wndir, name)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue
                fields, gloss = line.split("|", 1)
                toks = fields.split()
                pos = toks[2]
                n = int(toks[3], 16)
                lemmas = []
                for i in range(n):
                    w = toks[4 + 2 * i]
                    w = re.sub(r"\([a-z]+\)$", "", w).replace("_", " ")
                    lemmas.append(w)
                gloss = ws(gloss)
                if gloss and gloss[-1] not in ".!?":
                    gloss += "."
                head = ", ".join(lemmas)
                yield lemmas[0], ["%s (%s): %s" % (head, POS.get(pos, pos), gloss)]


# ---------------------------------------------------------------- HTML documentation

class ProseHTML(html.parser.HTMLParser):
    """Collect (heading, [paragraphs]) sections from prose elements, skipping code blocks."""

    BLOCK = {"p", "li", "dd", "dt", "td", "th", "blockquote"}
    HEAD = {"h1", "h2", "h3", "h4"}
    SKIP = {"pre", "script", "style", "nav", "head", "title", "code-block", "table"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections = []
        self.heading = ""
        self.paras = []
        self.buf = []
        self.skip = 0
        self.in_head = False
        self.hbuf = []
        self.skip_classes = 0
        self.stack = []

    def flush_para(self):
        p = ws("".join(self.buf))
        self.buf = []
        if p:
            self.paras.append(p)

    def flush_section(self):
        self.flush_para()
        if self.paras:
            self.sections.append((self.heading, self.paras))
        self.paras = []

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        skipping = tag in self.SKIP or "highlight" in cls.split() or \
            "sphinxsidebar" in cls or "related" in cls.split() or "footer" in cls.split()
        if tag not in ("br", "img", "hr", "meta", "link", "input", "col", "area", "wbr"):
            self.stack.append((tag, skipping))
            if skipping:
                self.skip += 1
        if self.skip:
            return
        if tag in self.HEAD:
            self.flush_section()
            self.in_head = True
            self.hbuf = []
        elif tag in self.BLOCK:
            self.flush_para()

    def handle_endtag(self, tag):
        # pop to the matching tag (tolerates unclosed <p>, <li>, ...)
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                for t, s in self.stack[i:]:
                    if s:
                        self.skip -= 1
                del self.stack[i:]
                break
        else:
            return
        if self.skip:
            return
        if tag in self.HEAD and self.in_head:
            self.in_head = False
            self.heading = ws("".join(self.hbuf)).rstrip("\u00b6").strip()
        elif tag in self.BLOCK:
            self.flush_para()

    def handle_data(self, data):
        if self.skip:
            return
        if self.in_head:
            self.hbuf.append(data)
        else:
            self.buf.append(data)

    def close(self):
        super().close()
        self.flush_section()


def html_articles(files):
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            doc = f.read()
        p = ProseHTML()
        p.feed(doc)
        p.close()
        for heading, paras in p.sections:
            keep = prose(paras)
            if keep:
                if heading:
                    keep[0] = heading + ": " + keep[0]
                yield heading, keep


HTML_SKIP = r"(genindex|py-modindex|search\.html|/index\.html$|/contents\.html$|/_static/|/whatsnew/changelog)"


def list_files(root, pattern, skip=None):
    """Regular files (no symlinks) under root whose name matches pattern, sorted by path."""
    out = []
    for d, dirs, files in os.walk(root):
        for fn in files:
            p = os.path.join(d, fn)
            if re.search(pattern, fn) and not os.path.islink(p) and os.path.isfile(p):
                out.append(p)
    if skip:
        out = [p for p in out if not re.search(skip, p)]
    return sorted(out)


def prose(paras):
    """Keep paragraphs that read as English prose (>= 4 words, >= 60% plain words)."""
    keep = []
    for para in paras:
        words = para.split()
        if len(words) < 4:
            continue
        alpha = sum(1 for w in words if re.fullmatch(r"[(\"'“‘]?[A-Za-z][A-Za-z'’-]*[)\"'”’,.;:!?]*", w))
        if alpha < 0.6 * len(words):
            continue
        keep.append(para)
    return keep


# ---------------------------------------------------------------- Perl POD

def pod_strip(t):
    t = re.sub(r"[A-Z]<<+\s+(.*?)\s+>>+", lambda m: "%s<%s>" % ("C", m.group(1).replace("<", "\x01").replace(">", "\x02")), t, flags=re.S)
    ents = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&"}
    prev = None
    while prev != t:
        prev = t
        t = re.sub(r"E<([^<>]*)>", lambda m: ents.get(m.group(1), ""), t)
        t = re.sub(r"[XZ]<[^<>]*>", "", t)
        t = re.sub(r"L<([^<>|]*)\|[^<>]*>", r"\1", t)
        t = re.sub(r"L<([^<>]*)>", lambda m: m.group(1).replace('/"', " ").replace('"', ""), t)
        t = re.sub(r"[A-Z]<([^<>]*)>", r"\1", t)
    return t.replace("\x01", "<").replace("\x02", ">")


def pod_articles(files):
    for path in files:
        name = os.path.basename(path)[:-4]
        with open(path, encoding="utf-8", errors="replace") as f:
            blocks = re.split(r"\n[ \t]*\n", f.read())
        heading, paras, skip = name, [], False
        for blk in blocks:
            if not blk.strip():
                continue
            if blk.startswith("="):
                cmd, _, arg = blk.partition(" ")
                cmd = cmd.strip()
                if cmd.startswith("=begin"):
                    skip = True
                elif cmd.startswith("=end"):
                    skip = False
                elif cmd.startswith("=head"):
                    kept = prose(paras)
                    if kept:
                        kept[0] = "%s, %s: %s" % (name, heading, kept[0]) if heading != name else "%s: %s" % (name, kept[0])
                        yield name, kept
                    heading, paras = ws(pod_strip(arg)), []
                elif cmd == "=item":
                    item = ws(pod_strip(arg)).lstrip("*").strip()
                    if item and not re.fullmatch(r"\d+\.?", item):
                        paras.append(item)
                continue
            if skip or blk[0] in " \t":
                continue  # verbatim (code) block
            p = ws(pod_strip(blk))
            if paras and len(paras[-1].split()) <= 8 and not re.search(r"[.:;!?]$", paras[-1]):
                paras[-1] = paras[-1] + ": " + p  # an =item tag followed by its text
            else:
                paras.append(p)
        kept = prose(paras)
        if kept:
            kept[0] = "%s, %s: %s" % (name, heading, kept[0]) if heading != name else "%s: %s" % (name, kept[0])
            yield name, kept


# ---------------------------------------------------------------- man pages (man(7) macros)

ROFF_CHARS = {"em": "—", "en": "–", "hy": "-", "aq": "'", "dq": '"', "lq": "“", "rq": "”",
              "oq": "‘", "cq": "’", "bu": "", "ti": "~", "ha": "^", "rs": "\\", "mi": "-",
              "pl": "+", "eq": "=", "mu": "×", "co": "©", "rg": "®", "de": "°", "ga": "`",
              "lh": "", "rh": "", "sc": "§", "Fo": "«", "Fc": "»", "fo": "‹", "fc": "›",
              "ga": "`", "aa": "´", "ul": "_", "ba": "|", "or": "|", "at": "@", "sh": "#",
              "Do": "$", "ct": "¢", "Po": "£", "ss": "ß", "ae": "æ", "oe": "œ", "ga": "`"}


def roff_text(t):
    t = t.replace("\\\\", "\x00")
    t = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", t)
    t = re.sub(r"\\\((..)", lambda m: ROFF_CHARS.get(m.group(1), ""), t)
    t = re.sub(r"\\\[([^\]]*)\]", lambda m: ROFF_CHARS.get(m.group(1), ""), t)
    t = re.sub(r"\\\*(\[[^\]]*\]|\(..|.)",
               lambda m: {"(lq": "“", "(rq": "”", "R": "®", "(Tm": "™"}.get(m.group(1), ""), t)
    t = re.sub(r"\\s[+-]?\d+", "", t)
    t = re.sub(r"\\[nw]\[?[^\]\s]*\]?", "", t)
    t = re.sub(r"\\[-]", "-", t)
    t = re.sub(r"\\e", "\\\\", t)
    t = re.sub(r"\\[ ~0]", " ", t)
    t = re.sub(r"\\[&c:/,|^%)!]", "", t)
    t = re.sub(r"\\.", "", t)
    return t.replace("\x00", "\\")


def roff_args(s):
    out, cur, q, i = [], "", False, 0
    while i < len(s):
        c = s[i]
        if c == '"':
            if q and i + 1 < len(s) and s[i + 1] == '"':
                cur += '"'
                i += 1
            else:
                q = not q
        elif c in " \t" and not q:
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if cur:
        out.append(cur)
    return out


MAN_SKIP_SECTIONS = {"SYNOPSIS", "SEE ALSO", "COLOPHON", "AUTHOR", "AUTHORS", "COPYRIGHT",
                     "LIBRARY", "REPORTING BUGS"}
MAN_BREAK = {".PP", ".P", ".LP", ".TP", ".TQ", ".IP", ".HP", ".sp", ".br", ".RS", ".RE",
             ".in", ".SS", ".SH", ".ti"}
MAN_FONT = {".B", ".I", ".SM", ".SB", ".BR", ".IR", ".RB", ".RI", ".BI", ".IB"}


def man_articles(files):
    for path in files:
        with gzip.open(path, "rb") as f:
            src = f.read().decode("utf-8", errors="replace")
        src = re.sub(r"(?<!\\)\\\n", "", src)          # line continuations
        lines = src.split("\n")
        body = [l for l in lines if l.strip() and not l.startswith(('.\\"', "'\\\"", '.\\\''))]
        if not body or body[0].startswith(".so ") or any(l.startswith(".Dd") for l in body[:5]):
            continue  # a link to another page, or an mdoc page
        base = os.path.basename(path)[:-3]
        name, _, sec = base.rpartition(".")
        page = "%s(%s)" % (name, sec)
        heading, paras, cur = "", [], []
        skip_block = None
        tag_next = False

        def end_para():
            if cur:
                p = ws(" ".join(cur))
                if p:
                    paras.append(p)
                cur.clear()

        def end_section():
            end_para()
            if heading.upper() not in MAN_SKIP_SECTIONS:
                kept = prose(paras)
                if kept:
                    kept[0] = "%s %s: %s" % (page, heading.lower(), kept[0])
                    return kept
            return None

        for line in lines:
            if skip_block:
                if line.startswith(skip_block):
                    skip_block = None
                continue
            if line.startswith((".", "'")):
                parts = line.split(None, 1)
                mac = "." + parts[0][1:]
                arg = parts[1] if len(parts) > 1 else ""
                if mac.startswith('.\\"'):
                    continue
                if mac in (".nf", ".EX"):
                    end_para()
                    skip_block = ".fi" if mac == ".nf" else ".EE"
                    continue
                if mac in (".TS", ".EQ", ".de", ".ig"):
                    end_para()
                    skip_block = {".TS": ".TE", ".EQ": ".EN", ".de": "..", ".ig": ".."}[mac]
                    continue
                if mac == ".SH":
                    kept = end_section()
                    if kept:
                        yield page, kept
                    heading, paras = ws(roff_text(" ".join(roff_args(arg)))), []
                    continue
                if mac in MAN_BREAK:
                    end_para()
                    if mac in (".TP", ".TQ"):
                        tag_next = True
                    elif mac == ".IP" and arg:
                        a = ws(roff_text(roff_args(arg)[0]))
                        if a and not re.fullmatch(r"[\W\d]*", a):
                            cur.append(a + ":")
                    continue
                if mac in MAN_FONT:
                    a = roff_args(arg)
                    alternating = len(mac) == 3 and mac not in (".SM", ".SB")
                    t = roff_text(("" if alternating else " ").join(a))
                elif mac in (".UR", ".MT", ".UE", ".ME"):
                    t = ""
                else:
                    continue  # other requests: ignore
            else:
                t = roff_text(line)
            if tag_next:
                tag_next = False
                cur.append(t + ":")
                continue
            cur.append(t)
        kept = end_section()
        if kept:
            yield page, kept


# ---------------------------------------------------------------- chunking and packing

def split_long(words):
    """Split a long word list at sentence ends into pieces of at most MAX_WORDS words."""
    pieces, cur = [], []
    for w in words:
        cur.append(w)
        if len(cur) >= TARGET_WORDS and re.search(r"[.;:!?][\"')]*$", w):
            pieces.append(cur)
            cur = []
        elif len(cur) >= MAX_WORDS:
            pieces.append(cur)
            cur = []
    if cur:
        if pieces and len(cur) < MIN_WORDS and len(pieces[-1]) + len(cur) <= MAX_WORDS:
            pieces[-1] += cur
        else:
            pieces.append(cur)
    return pieces


def article_chunks(head, paras):
    units = []
    for p in paras:
        w = p.split()
        if len(w) > MAX_WORDS:
            units.extend(split_long(w))
        elif w:
            units.append(w)
    chunks, cur = [], []
    for u in units:
        if cur and len(cur) + len(u) > TARGET_WORDS:
            chunks.append(cur)
            cur = []
        cur = cur + u
    if cur:
        chunks.append(cur)
    out = []
    hw = head.split()
    for i, c in enumerate(chunks):
        if i > 0 and hw and len(hw) <= 6 and \
                [x.lower() for x in c[:len(hw)]] != [x.lower() for x in hw]:
            c = hw[:-1] + [hw[-1] + ":"] + c
        out.append(c)
    return out


def pack(articles):
    """Yield passages (word lists) from a stream of (head, paragraphs) articles."""
    pending = []
    for head, paras in articles:
        for c in article_chunks(head, paras):
            if len(c) >= MIN_WORDS:
                if pending:
                    if len(pending) + len(c) <= MAX_WORDS:
                        c = pending + c
                    elif len(pending) >= DROP_WORDS:
                        yield pending
                    pending = []
                yield c
            else:
                if pending and len(pending) + len(c) > MAX_WORDS:
                    yield pending
                    pending = []
                pending = pending + c
                if len(pending) >= MIN_WORDS:
                    yield pending
                    pending = []
    if len(pending) >= DROP_WORDS:
        yield pending


def norm_key(text):
    return hashlib.sha1(re.sub(r"[\W_]+", " ", text.lower()).strip().encode()).digest()


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    root, out_path, counts_path = sys.argv[1:]

    def pkg(name, *rel):
        return os.path.join(root, name, "usr", "share", *rel)

    sources = []   # (source name, package, article iterator)

    def add_dictd(package, name, cleaner):
        base = pkg(package, "dictd", name)
        if os.path.exists(base + ".index"):
            sources.append((name, package,
                            ((h, cleaner(h, t)) for h, t in dictd_articles(base))))

    add_dictd("dict-gcide", "gcide", clean_gcide)
    if os.path.isdir(pkg("wordnet-base", "wordnet")):
        sources.append(("wordnet", "wordnet-base", wordnet_articles(pkg("wordnet-base", "wordnet"))))
    add_dictd("dict-foldoc", "foldoc", clean_generic_dictd)
    add_dictd("dict-jargon", "jargon", clean_generic_dictd)
    add_dictd("dict-devil", "devil", clean_generic_dictd)
    d = pkg("python3.11-doc", "doc", "python3.11", "html")
    if os.path.isdir(d):
        sources.append(("pydoc", "python3.11-doc", html_articles(list_files(d, r"\.html$", HTML_SKIP))))
    d = pkg("debian-reference-en", "debian-reference")
    if os.path.isdir(d):
        sources.append(("debref", "debian-reference-en", html_articles(list_files(d, r"\.en\.html$", HTML_SKIP))))
    d = pkg("perl-doc", "perl")
    if os.path.isdir(d):
        sources.append(("perlpod", "perl-doc", pod_articles(list_files(d, r"\.pod$"))))
    for package, name in (("manpages", "man"), ("manpages-dev", "mandev")):
        d = pkg(package, "man")
        if os.path.isdir(d):
            sources.append((name, package, man_articles(list_files(d, r"\.[0-9][a-z]*\.gz$"))))
    d = pkg("perl-doc", "man", "man3")   # module documentation (man1 repeats the .pod files)
    if os.path.isdir(d):
        sources.append(("perlman", "perl-doc", man_articles(list_files(d, r"\.3perl\.gz$"))))
    d = pkg("postgresql-doc-15", "doc", "postgresql-doc-15", "html")
    if os.path.isdir(d):
        sources.append(("pgdoc", "postgresql-doc-15", html_articles(list_files(d, r"\.html$", HTML_SKIP))))

    seen = set()
    rows = []
    counts = []
    for name, package, arts in sources:
        n = dups = 0
        nwords = 0
        for words in pack(arts):
            text = " ".join(words)
            if len(words) < DROP_WORDS:
                continue
            k = norm_key(text)
            if k in seen:
                dups += 1
                continue
            seen.add(k)
            pid = "%s-%d" % (name, n)
            n += 1
            nwords += len(words)
            rows.append((hashlib.sha1(pid.encode()).digest(), pid, text))
        counts.append((package, name, n, dups, nwords))
        print("passages: %-8s %7d passages, %6d duplicates dropped, %.1f words/passage"
              % (name, n, dups, nwords / max(n, 1)), file=sys.stderr, flush=True)
    rows.sort()
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for _, pid, text in rows:
            f.write(json.dumps({"_id": pid, "title": "", "text": text}, ensure_ascii=False) + "\n")
    os.replace(tmp, out_path)
    with open(counts_path, "w") as f:
        for package, name, n, dups, nwords in counts:
            f.write("%s\t%s\t%d\t%d\t%.1f\n" % (package, name, n, dups, nwords / max(n, 1)))
    print("passages: total %d -> %s" % (len(rows), out_path), file=sys.stderr)


if __name__ == "__main__":
    main()
