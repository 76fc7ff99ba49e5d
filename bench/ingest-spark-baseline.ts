// Child process of bench/ingest.ts --engine spark: plain Spark SQL turning the CSV into Parquet
// on the same Spark Connect server, the baseline medlake's ingest on Spark is compared with.
// Prints one JSON line.
import { rm } from 'node:fs/promises';
import { parseConnectUrl } from '../server/src/engines/spark/connect-url.ts';
import { SparkConnectClient } from '../server/src/engines/spark/spark-connect-client.ts';

const [url, csv, directory, lines = 'multi-line'] = process.argv.slice(2);
if (!url || !csv || !directory) {
  throw new Error('usage: ingest-spark-baseline.ts URL CSV DIR [multi-line|single-line]');
}
await rm(directory, { recursive: true, force: true });
const client = new SparkConnectClient(parseConnectUrl(url));
const started = performance.now();
// Read as medlake reads (one split, so that quoted values may span lines; in splits where the
// contract says none does), every field as text: the least work a conversion can do.
await client.sql(
  `CREATE OR REPLACE TEMPORARY VIEW landed USING csv OPTIONS (path '${csv}', header 'true', multiLine '${lines === 'multi-line'}')`,
);
await client.sql(
  `INSERT OVERWRITE DIRECTORY '${directory}' USING parquet OPTIONS (compression 'snappy') SELECT * FROM landed`,
);
const seconds = (performance.now() - started) / 1000;
await client.close();
await rm(directory, { recursive: true, force: true });
console.log(JSON.stringify({ seconds, peakRssBytes: process.resourceUsage().maxRSS * 1024 }));
