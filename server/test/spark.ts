/**
 * The Spark Connect server the Spark tests run against: the one `npm run test:all` starts
 * with scripts/services/spark.sh and names in MEDLAKE_TEST_SPARK_URL.
 */
export function testSparkUrl(): string {
  const url = process.env.MEDLAKE_TEST_SPARK_URL;
  if (!url) {
    throw new Error(
      'No Spark Connect server for the Spark tests: run them with `npm run test:all`, or start one with `bash scripts/services/spark.sh start` and set MEDLAKE_TEST_SPARK_URL to the URL it prints',
    );
  }
  return url;
}
