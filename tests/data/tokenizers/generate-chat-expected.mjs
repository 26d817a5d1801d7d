// Token ids of the chat-template goldens (../chat-templates/<family>/golden.json outputs) under the
// matching tokenizer, from Hugging Face's Rust tokenizers (add_special_tokens=false, as transformers'
// apply_chat_template tokenizes). Run as generate-expected.mjs is run (see README.md).
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const { Tokenizer } = createRequire(path.join(process.cwd(), "noop.js"))("@anush008/tokenizers");
const pairs = [["qwen3", "qwen3"], ["llama3", "llama3"]];
for (const [tokenizerName, family] of pairs) {
  const scratch = path.join(process.env.TMPDIR ?? "/tmp", `chat-expected-${tokenizerName}.json`);
  fs.writeFileSync(scratch, zlib.gunzipSync(fs.readFileSync(path.join(here, tokenizerName, "tokenizer.json.gz"))));
  const tokenizer = Tokenizer.fromFile(scratch);
  const golden = JSON.parse(fs.readFileSync(path.join(here, "..", "chat-templates", family, "golden.json"), "utf8"));
  const cases = [];
  for (const c of golden.cases) {
    if (c.output === undefined || c.extra_context !== undefined) continue;
    const encoding = await tokenizer.encode(c.output, null, { addSpecialTokens: false });
    cases.push({ name: c.name, ids: Array.from(encoding.getIds()) });
  }
  const lines = cases.map((c) => "  " + JSON.stringify(c)).join(",\n");
  fs.writeFileSync(path.join(here, tokenizerName, "chat-expected.json"),
    `{\n "template": ${JSON.stringify(family)},\n "source": "generate-chat-expected.mjs",\n "cases": [\n${lines}\n ]\n}\n`);
  console.log(tokenizerName, family, cases.length);
}
