// Seed-style baseline for `roilens bench --which throughput`: ROI calls made one after another
// with the official Gemini JS SDK (@google/genai, installed for the conformance suite).
// Usage: node bench/sdk_sequential.mjs BASE_URL CALLS PROMPT_FILE IMAGE_FILE MIME_TYPE
// Prints one JSON line: {"calls": N, "ok": K, "seconds": S}.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tests', 'conformance', 'package.json'));
const { GoogleGenAI } = require('@google/genai');

const [baseUrl, callsText, promptFile, imageFile, mimeType] = process.argv.slice(2);
const calls = Number(callsText);
const prompt = fs.readFileSync(promptFile, 'utf8');
const image = fs.readFileSync(imageFile).toString('base64');
const ai = new GoogleGenAI({ apiKey: 'local-bench', httpOptions: { baseUrl } });

let ok = 0;
const start = process.hrtime.bigint();
for (let i = 0; i < calls; i++) {
  const interaction = await ai.interactions.create({
    model: 'gemini-3-flash-preview',
    input: [
      { type: 'text', text: prompt },
      { type: 'image', data: image, mime_type: mimeType },
    ],
    tools: [{ type: 'code_execution' }],
    store: false,
  });
  if (interaction.status === 'completed') ok++;
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
console.log(JSON.stringify({ calls, ok, seconds }));
