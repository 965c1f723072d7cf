// Conformance of the roilens local backend with the official Gemini JS SDK (@google/genai 3.x):
// the SDK is pointed at the backend through httpOptions.baseUrl and used as its docs show.
// Run by tests/conformance/sdk_conformance_test.cc, which starts the backends and sets:
//   ROILENS_BASE_URL     echo-coder backend requiring ROILENS_API_KEY
//   ROILENS_API_KEY      the key it accepts
//   ROILENS_FAULT_URLS   JSON {"429": url, "500": url, "503": url, "reset": url, "garbage": url}
//                        (backends failing every request with that fault; no key needed)
//   ROILENS_CV_BASE_URL  (optional) backend with the CV coder and a working sandbox
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateSync } from 'node:zlib';

import { GoogleGenAI } from '@google/genai';

const baseUrl = process.env.ROILENS_BASE_URL;
const apiKey = process.env.ROILENS_API_KEY;
const faultUrls = JSON.parse(process.env.ROILENS_FAULT_URLS ?? '{}');
const cvBaseUrl = process.env.ROILENS_CV_BASE_URL;
const model = 'gemini-3-flash-preview';

assert.ok(baseUrl, 'ROILENS_BASE_URL must point at a running local backend');

function client(url = baseUrl, key = apiKey) {
  return new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: url } });
}

// ---- a PNG made here (no fixtures): RGB gradient with a bright square ----------------------
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
function makePng(width, height) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    raw[row] = 0;  // filter: none
    for (let x = 0; x < width; x++) {
      const bright = x > width / 4 && x < (3 * width) / 4 && y > height / 4 && y < (3 * height) / 4;
      raw[row + 1 + x * 3] = bright ? 255 : (x * 255) / width;
      raw[row + 2 + x * 3] = bright ? 255 : (y * 255) / height;
      raw[row + 3 + x * 3] = bright ? 255 : 60;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);  // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0)),
  ]);
}
const png = makePng(64, 48);
const pngBase64 = png.toString('base64');

function imageInput(text) {
  return [
    { type: 'text', text },
    { type: 'image', data: pngBase64, mime_type: 'image/png' },
  ];
}

// Walks the steps the way the SDK documentation does and collects what a caller would use.
function walkSteps(interaction) {
  const seen = { text: '', images: [], calls: [], results: [], thoughts: 0 };
  for (const step of interaction.steps) {
    switch (step.type) {
      case 'thought':
        seen.thoughts++;
        assert.equal(typeof step.signature, 'string');
        break;
      case 'code_execution_call':
        assert.equal(step.arguments.language, 'python');
        assert.equal(typeof step.arguments.code, 'string');
        seen.calls.push(step);
        break;
      case 'code_execution_result':
        assert.equal(typeof step.result, 'string');
        seen.results.push(step);
        break;
      case 'model_output':
        for (const content of step.content ?? []) {
          if (content.type === 'text') seen.text = content.text;
          if (content.type === 'image') seen.images.push(content);
        }
        break;
      default:
        break;
    }
  }
  return seen;
}

function lastJsonLine(text) {
  return JSON.parse(text.trim().split('\n').at(-1));
}

test('image + code_execution: steps iterate as documented', async () => {
  const ai = client();
  const interaction = await ai.interactions.create({
    model,
    input: imageInput('Describe the region'),
    tools: [{ type: 'code_execution' }],
  });
  assert.equal(interaction.status, 'completed');
  assert.match(interaction.id, /^v1_/);
  const seen = walkSteps(interaction);
  assert.equal(seen.thoughts, 1);
  assert.equal(seen.calls.length, 0, 'the echo coder runs no code');
  assert.equal(seen.images.length, 1);
  assert.equal(seen.images[0].data, pngBase64);
  assert.deepEqual(lastJsonLine(seen.text), { text: 'echo: Describe the region' });
  // The SDK's own convenience accessors work on our answers.
  assert.equal(interaction.output_text, seen.text);
  assert.equal(interaction.output_image.mime_type, 'image/png');
  assert.ok(interaction.usage.total_tokens >= 2 * 258);
});

test('image + code_execution with the CV coder runs code in the sandbox',
  { skip: cvBaseUrl ? false : 'no CV backend (sandbox unavailable here)' }, async () => {
    const ai = client(cvBaseUrl, 'unused');
    const interaction = await ai.interactions.create({
      model,
      input: imageInput('Describe this image.'),
      tools: [{ type: 'code_execution' }],
    });
    const seen = walkSteps(interaction);
    assert.ok(seen.calls.length >= 1, JSON.stringify(interaction.steps.map((s) => s.type)));
    assert.equal(seen.results.length, seen.calls.length);
    seen.calls.forEach((call, i) => assert.equal(seen.results[i].call_id, call.id));
    assert.equal(interaction.status, 'completed', seen.results.map((r) => r.result).join('\n'));
    assert.equal(seen.results.at(-1).is_error, false);
    assert.ok(seen.text.length > 0);
    assert.equal(typeof lastJsonLine(seen.text), 'object');
  });

test('multi-turn with previous_interaction_id, then GET', async () => {
  const ai = client();
  const first = await ai.interactions.create({ model, input: imageInput('first turn') });
  const second = await ai.interactions.create({
    model, input: 'second turn', previous_interaction_id: first.id,
  });
  assert.equal(second.status, 'completed');
  assert.deepEqual(lastJsonLine(second.output_text), { text: 'echo: first turn\nsecond turn' });
  assert.equal(second.output_image.data, pngBase64, 'the earlier turn\'s image is in context');

  const got = await ai.interactions.get(second.id);
  assert.equal(got.id, second.id);
  assert.equal(got.steps[0].type, 'user_input');
  assert.equal(got.steps[0].content[0].text, 'second turn');
  assert.equal(got.output_text, second.output_text);

  await ai.interactions.delete(first.id);
  await assert.rejects(ai.interactions.get(first.id), (err) => err.status === 404);
});

test('stateless: store:false with the step history sent back verbatim', async () => {
  const ai = client();
  const input = imageInput('stateless one');
  const first = await ai.interactions.create({ model, input, store: false });
  const history = [{ type: 'user_input', content: input }, ...first.steps,
    { type: 'user_input', content: [{ type: 'text', text: 'stateless two' }] }];
  const second = await ai.interactions.create({ model, input: history, store: false });
  assert.deepEqual(lastJsonLine(second.output_text), { text: 'echo: stateless one\nstateless two' });
  await assert.rejects(ai.interactions.get(second.id), (err) => err.status === 404);
});

test('streaming: created, step.start/delta/stop, completed', async () => {
  const ai = client();
  const stream = await ai.interactions.create({
    model, input: imageInput('stream ' + 'x'.repeat(700)), stream: true,
  });
  const types = [];
  let text = '';
  let image;
  let completed;
  for await (const event of stream) {
    types.push(event.event_type);
    if (event.event_type === 'step.delta' && event.delta.type === 'text') text += event.delta.text;
    if (event.event_type === 'step.delta' && event.delta.type === 'image') image = event.delta;
    if (event.event_type === 'interaction.completed') completed = event.interaction;
  }
  assert.equal(types[0], 'interaction.created');
  assert.equal(types.at(-1), 'interaction.completed');
  assert.ok(types.includes('step.start') && types.includes('step.stop'));
  assert.ok(types.filter((t) => t === 'step.delta').length > 3);
  assert.equal(completed.status, 'completed');
  assert.equal(image.data, pngBase64);
  assert.equal(lastJsonLine(text).text, 'echo: stream ' + 'x'.repeat(73));
});

// ---- errors: each surfaces as the SDK's own error class with the HTTP status ----------------

async function expectApiError(promise, status, className) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.status, status, String(err));
    assert.equal(err.name, className, String(err));
    // The class is the SDK's (APIError family), not a generic Error from fetch or JSON.
    assert.equal(Object.getPrototypeOf(err.constructor).name, 'APIError');
    return true;
  });
}

const noRetry = { maxRetries: 0 };

test('errors: wrong key is 400 API_KEY_INVALID', async () => {
  const ai = client(baseUrl, 'definitely-wrong-key');
  await expectApiError(ai.interactions.create({ model, input: 'hi' }, noRetry), 400,
    'BadRequestError');
  await assert.rejects(ai.interactions.create({ model, input: 'hi' }, noRetry),
    (err) => {
      // The raw Google error body stays reachable on the SDK's error.
      const body = JSON.parse(err.body);
      assert.equal(body.error.status, 'INVALID_ARGUMENT');
      assert.equal(body.error.details[0].reason, 'API_KEY_INVALID');
      assert.ok(!String(err.message).includes('definitely-wrong-key'));
      return true;
    });
});

test('errors: bad request and unknown interaction', async () => {
  const ai = client();
  await expectApiError(ai.interactions.create({ model: '', input: 'hi' }, noRetry), 400,
    'BadRequestError');
  await expectApiError(
    ai.interactions.create({ model, input: 'hi', previous_interaction_id: 'v1_missing' }, noRetry),
    404, 'NotFoundError');
  await expectApiError(ai.interactions.get('v1_missing', {}, noRetry), 404, 'NotFoundError');
});

for (const [kind, status, className] of [
  ['429', 429, 'RateLimitError'], ['500', 500, 'InternalServerError'],
  ['503', 503, 'InternalServerError']]) {
  test(`errors: injected ${kind}`, { skip: faultUrls[kind] ? false : 'no fault backend' },
    async () => {
      const ai = client(faultUrls[kind], 'any');
      await expectApiError(ai.interactions.create({ model, input: 'hi' }, noRetry), status,
        className);
    });
}

test('errors: connection reset and garbage bodies reject (never resolve with junk)',
  { skip: faultUrls.reset && faultUrls.garbage ? false : 'no fault backend' }, async () => {
    await assert.rejects(
      client(faultUrls.reset, 'any').interactions.create({ model, input: 'hi' }, noRetry));
    await assert.rejects(
      client(faultUrls.garbage, 'any').interactions.create({ model, input: 'hi' }, noRetry));
  });
