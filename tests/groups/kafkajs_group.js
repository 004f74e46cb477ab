// A KafkaJS 2.2.4 consumer-group member, run as its own process by test_clients.py.
//
// usage: node kafkajs_group.js BOOTSTRAP GROUP TOPIC
// Prints one line per event on stdout:
//   JOIN p,p,...         joined a generation with these partitions of TOPIC
//   REC p offset value   a record handed to eachMessage
//   COMMIT p next ...    offsets KafkaJS committed (auto-commit after each batch)
//   CRASH message        the consumer crashed
//   CLOSED               disconnect() returned (final commit sent, group left)
// SIGTERM asks for a clean disconnect. Run with NODE_PATH=tests/clients/node_modules.
'use strict';

const { Kafka, logLevel } = require('kafkajs');

const out = (line) => process.stdout.write(line + '\n');

async function main() {
  const [bootstrap, groupId, topic] = process.argv.slice(2);
  const toStderr = () => ({ namespace, level, label, log }) =>
    process.stderr.write(`${label} [${namespace}] ${log.message} ${JSON.stringify(log)}\n`);
  const kafka = new Kafka({ clientId: 'evert-groups-kafkajs', brokers: [bootstrap], logLevel: logLevel.WARN,
                            logCreator: toStderr, retry: { retries: 10 } });
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500,
                                    rebalanceTimeout: 20000, maxWaitTimeInMs: 200 });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const parts = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b);
    out(`JOIN ${parts.join(',')}`);
  });
  consumer.on(consumer.events.COMMIT_OFFSETS, (e) => {
    for (const t of e.payload.topics)
      for (const p of t.partitions) out(`COMMIT ${p.partition} ${p.offset}`);
  });
  consumer.on(consumer.events.CRASH, (e) => out(`CRASH ${e.payload.error && e.payload.error.message}`));

  let stopping = false;
  process.on('SIGTERM', async () => {
    if (stopping) return;
    stopping = true;
    try {
      await consumer.disconnect();
      out('CLOSED');
      process.exit(0);
    } catch (err) {
      process.stderr.write(`disconnect: ${err.stack}\n`);
      process.exit(1);
    }
  });

  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      out(`REC ${partition} ${message.offset} ${message.value.toString()}`);
    },
  });
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
