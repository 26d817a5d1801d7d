// Drives the server's chat page in headless Chromium (Debian's /usr/bin/chromium through playwright-core):
// sets greedy decoding, types a message, sends it, waits for the streamed reply to finish, takes a
// screenshot, and prints {"text", "stats"} as one JSON line for the NUnit test (ChatPageTests) to check.
//   node chat_page.mjs URL SCREENSHOT.png MESSAGE MAX_TOKENS
import { chromium } from "playwright-core";

const [url, screenshot, message, maxTokens] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.fill("#temperature", "0");
  await page.fill("#max-tokens", maxTokens);
  await page.fill("#message", message);
  await page.click("#send");
  await page.waitForSelector("#stats[data-done='true']", { timeout: 60000 });
  await page.screenshot({ path: screenshot, fullPage: true });
  const text = await page.textContent(".assistant");
  const stats = await page.textContent("#stats");
  console.log(JSON.stringify({ text, stats }));
} finally {
  await browser.close();
}
