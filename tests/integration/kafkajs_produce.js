// Produces the messages of a JSON file with KafkaJS and prints, as JSON, the
// [partition, offset] of each message taken from the produce responses.
//
// usage: node kafkajs_produce.js BOOTSTRAP INPUT.json
// INPUT: {"topic": str, "chunk": int, "acks": int,
//         "messages": [{"p": int, "k": b64|null, "v": b64|null, "h": [[name, b64|null], ...], "ts": int}]}
// Chunks alternate between no compression and gzip (KafkaJS's built-in codec).
// Run with NODE_PATH=tests/clients/node_modules.
'use strict';

const fs = require('fs');
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const fromB64 = (s) => (s === null ? null : Buffer.from(s, 'base64'));

function toKafkaJs(m) {
  // Header names arrive sorted, so a repeated name is adjacent and becomes
  // one array, which KafkaJS writes as consecutive headers.
  const headers = {};
  for (const [name, value] of m.h) {
    const v = fromB64(value);
    if (name in headers) {
      headers[name] = [].concat(headers[name], [v]);
    } else {
      headers[name] = v;
    }
  }
  return { partition: m.p, key: fromB64(m.k), value: fromB64(m.v), headers, timestamp: String(m.ts) };
}

async function main() {
  const [bootstrap, inputPath] = process.argv.slice(2);
  const input = JSON.parse(fs.readFileSync(inputPath, 'utf8'));
  const kafka = new Kafka({ clientId: 'evert-it-kafkajs', brokers: [bootstrap], logLevel: logLevel.WARN,
                            retry: { retries: 3 } });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const offsets = new Array(input.messages.length);
  try {
    for (let start = 0, chunkNo = 0; start < input.messages.length; start += input.chunk, chunkNo++) {
      const chunk = input.messages.slice(start, start + input.chunk);
      const result = await producer.send({
        topic: input.topic,
        acks: input.acks,
        compression: chunkNo % 2 === 0 ? CompressionTypes.None : CompressionTypes.GZIP,
        messages: chunk.map(toKafkaJs),
      });
      const base = new Map();
      for (const r of result) {
        if (r.errorCode !== 0) throw new Error(`partition ${r.partition}: error ${r.errorCode}`);
        base.set(r.partition, BigInt(r.baseOffset));
      }
      // Within one request the messages of a partition are one batch, in order.
      const next = new Map();
      chunk.forEach((m, i) => {
        if (!base.has(m.p)) throw new Error(`no produce response for partition ${m.p}`);
        const k = next.get(m.p) || 0n;
        offsets[start + i] = [m.p, Number(base.get(m.p) + k)];
        next.set(m.p, k + 1n);
      });
    }
  } finally {
    await producer.disconnect();
  }
  process.stdout.write(JSON.stringify(offsets));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
