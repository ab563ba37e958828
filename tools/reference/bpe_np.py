"""Independent BPE encoders for the reference fixtures (not shipped; stdlib only).

Two tokenizer.json flavours are supported, each implemented from what the file specifies:

* GPT-2 byte-level BPE (pre_tokenizer ByteLevel, use_regex, add_prefix_space=false):
  GPT-2 pre-tokenization regex
     's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
  implemented by a hand-written scanner (\\p{L} ~ str.isalpha, \\p{N} ~ str.isnumeric,
  \\s ~ str.isspace; exact for ASCII / common text), bytes_to_unicode mapping, rank-ordered
  merges. No BOS/EOS added (ByteLevel post-processor adds nothing).

* SentencePiece-style BPE (stories260k): normalizer Sequence[Prepend("\u2581"),
  Replace(" " -> "\u2581")], no pre-tokenizer (the whole normalized string is one word),
  BPE over characters with byte_fallback (<0xXX> for chars missing from the vocab),
  TemplateProcessing post-processor prepending <s> (id 1) when add_special_tokens.
"""
import json


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _is_l(c):
    return c.isalpha()


def _is_n(c):
    return c.isnumeric()


def _is_s(c):
    return c.isspace()


def _is_other(c):
    return not (_is_s(c) or _is_l(c) or _is_n(c))


def gpt2_pretokenize(text):
    """Split text like the GPT-2 regex (leftmost alternative wins at each position)."""
    out = []
    i = 0
    n = len(text)
    contractions = ("s", "t", "re", "ve", "m", "ll", "d")
    while i < n:
        c = text[i]
        # 's|'t|'re|'ve|'m|'ll|'d
        if c == "'":
            hit = None
            for suf in contractions:
                if text.startswith(suf, i + 1):
                    hit = suf
                    break
            if hit is not None:
                out.append(text[i:i + 1 + len(hit)])
                i += 1 + len(hit)
                continue
        # ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
        matched = False
        for cls in (_is_l, _is_n, _is_other):
            j = i
            if text[j] == " " and j + 1 < n and cls(text[j + 1]):
                j += 1
            if cls(text[j]) and not (j == i and text[j] == " " and cls is _is_other):
                k = j
                while k < n and cls(text[k]):
                    k += 1
                out.append(text[i:k])
                i = k
                matched = True
                break
        if matched:
            continue
        # \s+(?!\S) | \s+
        if _is_s(c):
            k = i
            while k < n and _is_s(text[k]):
                k += 1
            if k == n:
                end = k
            elif k - i >= 2:
                end = k - 1
            else:
                end = k
            out.append(text[i:end])
            i = end
            continue
        raise AssertionError("unreachable at %r" % text[i:])
    return out


def _bpe_merge(symbols, ranks):
    """Greedy lowest-rank-first pair merging (leftmost on ties)."""
    symbols = list(symbols)
    while len(symbols) > 1:
        best = None
        best_i = -1
        for i in range(len(symbols) - 1):
            r = ranks.get((symbols[i], symbols[i + 1]))
            if r is not None and (best is None or r < best):
                best, best_i = r, i
        if best is None:
            break
        symbols = symbols[:best_i] + [symbols[best_i] + symbols[best_i + 1]] + symbols[best_i + 2:]
    return symbols


def _load_ranks(merges):
    ranks = {}
    for r, m in enumerate(merges):
        if isinstance(m, str):
            a, b = m.split(" ", 1)
        else:
            a, b = m
        ranks.setdefault((a, b), r)
    return ranks


class GPT2BPE:
    def __init__(self, tokenizer_json_path):
        with open(tokenizer_json_path, encoding="utf-8") as f:
            tj = json.load(f)
        m = tj["model"]
        assert m["type"] == "BPE"
        pt = tj.get("pre_tokenizer") or {}
        assert pt.get("type") == "ByteLevel", pt
        self.add_prefix_space = bool(pt.get("add_prefix_space", False))
        self.vocab = m["vocab"]
        self.inv = {v: k for k, v in self.vocab.items()}
        for t in tj.get("added_tokens", []):
            self.inv[t["id"]] = t["content"]
        self.ranks = _load_ranks(m["merges"])
        self.b2u = bytes_to_unicode()
        self.u2b = {v: k for k, v in self.b2u.items()}

    def encode(self, text):
        if self.add_prefix_space and not text.startswith(" "):
            text = " " + text
        ids = []
        for piece in gpt2_pretokenize(text):
            mapped = "".join(self.b2u[b] for b in piece.encode("utf-8"))
            for s in _bpe_merge(list(mapped), self.ranks):
                ids.append(self.vocab[s])
        return ids

    def decode(self, ids):
        s = "".join(self.inv[i] for i in ids)
        return bytes(self.u2b[c] for c in s).decode("utf-8", errors="replace")


class SentencePieceBPE:
    def __init__(self, tokenizer_json_path):
        with open(tokenizer_json_path, encoding="utf-8") as f:
            tj = json.load(f)
        m = tj["model"]
        assert m["type"] == "BPE" and m.get("byte_fallback"), m.get("type")
        self.vocab = m["vocab"]
        self.inv = {v: k for k, v in self.vocab.items()}
        self.ranks = _load_ranks(m["merges"])
        self.unk = m.get("unk_token")
        # normalizer: only the Prepend/Replace sequence used by llama-style tokenizers
        norm = tj.get("normalizer") or {}
        steps = norm.get("normalizers", [norm]) if norm.get("type") == "Sequence" else [norm]
        self.norm_steps = []
        for st in steps:
            if st.get("type") == "Prepend":
                self.norm_steps.append(("prepend", st["prepend"]))
            elif st.get("type") == "Replace":
                self.norm_steps.append(("replace", st["pattern"]["String"], st["content"]))
            else:
                raise ValueError("unsupported normalizer %r" % st)
        assert tj.get("pre_tokenizer") is None
        # post-processor: TemplateProcessing "single" -> leading special tokens
        self.prefix_ids = []
        self.suffix_ids = []
        pp = tj.get("post_processor")
        if pp:
            assert pp["type"] == "TemplateProcessing"
            seen_a = False
            for item in pp["single"]:
                if "Sequence" in item:
                    seen_a = True
                    continue
                sid = item["SpecialToken"]["id"]
                ids = pp["special_tokens"][sid]["ids"]
                (self.suffix_ids if seen_a else self.prefix_ids).extend(ids)

    def normalize(self, text):
        for st in self.norm_steps:
            if st[0] == "prepend":
                if text:
                    text = st[1] + text
            else:
                text = text.replace(st[1], st[2])
        return text

    def encode(self, text, add_special_tokens=True):
        s = self.normalize(text)
        ids = []
        if s:
            syms = _bpe_merge(list(s), self.ranks)
            for sym in syms:
                if sym in self.vocab:
                    ids.append(self.vocab[sym])
                else:
                    # byte fallback (only single characters can be out of vocab)
                    for b in sym.encode("utf-8"):
                        ids.append(self.vocab["<0x%02X>" % b])
        if add_special_tokens:
            ids = self.prefix_ids + ids + self.suffix_ids
        return ids

    def decode(self, ids, skip_special=True):
        out = bytearray()
        for i in ids:
            t = self.inv[i]
            if skip_special and t in ("<s>", "</s>", "<unk>"):
                continue
            if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
                out.append(int(t[3:5], 16))
            else:
                out.extend(t.replace("\u2581", " ").encode("utf-8"))
        s = out.decode("utf-8", errors="replace")
        return s[1:] if s.startswith(" ") else s
