import { readFileSync } from 'node:fs';
import path from 'node:path';
import { userRoleSchema } from '@medlake/shared';
import { z } from 'zod';

const port = z
  .string()
  .regex(/^\d+$/, 'must be a whole number between 0 and 65535')
  .transform(Number)
  .pipe(z.number().max(65535, 'must be a whole number between 0 and 65535'));

const postgresUrl = z
  .string()
  .refine((value) => /^postgres(ql)?:\/\/.+/.test(value) && URL.canParse(value), {
    message: 'must be a postgres:// or postgresql:// connection URL',
  });

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('production'),
  /** Holds every piece of state of the embedded default: catalog, lake, results, vault. */
  MEDLAKE_HOME: z.string().default('./.medlake'),
  /** When set, the catalog lives in this PostgreSQL database instead of PGlite. */
  DATABASE_URL: postgresUrl.optional(),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: port.default(8080),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * Set when medlake runs behind a proxy or load balancer: then the client's address and the
   * scheme come from X-Forwarded-For and X-Forwarded-Proto. "true" trusts any proxy; better a
   * list of the proxies' addresses or networks, e.g. "10.0.0.0/8".
   */
  MEDLAKE_TRUST_PROXY: z
    .string()
    .default('false')
    .transform((value) =>
      value === 'true'
        ? true
        : value === 'false'
          ? false
          : value.split(',').map((part) => part.trim()),
    ),
  /** The query engine: DuckDB in the server process, or a Spark cluster through Spark Connect. */
  MEDLAKE_ENGINE: z.enum(['duckdb', 'spark']).default('duckdb'),
  /**
   * The Spark Connect server, for MEDLAKE_ENGINE=spark: sc://host:15002, with
   * /;token=...;use_ssl=true for clusters that ask for a token.
   */
  SPARK_CONNECT_URL: z
    .string()
    .regex(/^sc:\/\//, 'must start with sc://')
    .optional(),
  /**
   * Where landing, lake and results live: a folder under MEDLAKE_HOME, or an S3 bucket (AWS or
   * an S3-compatible server), with credentials from the AWS SDK's standard chain
   * (AWS_ACCESS_KEY_ID…, AWS_PROFILE, web identity, instance or task role).
   */
  MEDLAKE_STORAGE: z.enum(['local', 's3']).default('local'),
  MEDLAKE_S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name')
    .optional(),
  /** A folder in the bucket for everything medlake keeps, e.g. "medlake/"; empty: the bucket. */
  MEDLAKE_S3_PREFIX: z
    .string()
    .regex(/^([A-Za-z0-9_.-]+\/)*$/, 'must be folder names each ending in /, e.g. medlake/')
    .default(''),
  MEDLAKE_S3_REGION: z.string().min(1).default('us-east-1'),
  /** An S3-compatible server's URL (MinIO, Ceph, S3Proxy…); AWS's own endpoint when unset. */
  MEDLAKE_S3_ENDPOINT: z.url().optional(),
  /** Bucket in the path rather than the host name, as most S3-compatible servers want. */
  MEDLAKE_S3_PATH_STYLE: z.enum(['true', 'false']).default('false'),
  /** Server-side encryption asked for on every write: none (the bucket's default), SSE-S3, SSE-KMS. */
  MEDLAKE_S3_SSE: z.enum(['none', 'AES256', 'aws:kms']).default('none'),
  /** The KMS key for MEDLAKE_S3_SSE=aws:kms; the account's default S3 key when unset. */
  MEDLAKE_S3_KMS_KEY_ID: z.string().min(1).optional(),
  /**
   * Where DuckDB finds its httpfs extension (installed by `npm run install:httpfs`), which the
   * DuckDB engine needs to reach S3; DuckDB's own ~/.duckdb/extensions when unset.
   */
  MEDLAKE_DUCKDB_EXTENSIONS: z.string().min(1).optional(),
  /** The vault's own directory; by default inside MEDLAKE_HOME, better on another disk or host. */
  MEDLAKE_VAULT_DIR: z.string().min(1).optional(),
  /** 32 bytes as 64 hex digits or base64. Without it the embedded default generates one. */
  MEDLAKE_VAULT_KEY: z.string().min(1).optional(),
  /**
   * The vault service (`medlake vault serve`) on a host of its own, https://host:port. When set,
   * this server holds no vault and no vault key: ingest and re-identification ask the service,
   * over mutual TLS with the three files below (made by `medlake vault certs`).
   */
  MEDLAKE_VAULT_URL: z
    .string()
    .refine((value) => /^https:\/\/[^/]+\/?$/.test(value) && URL.canParse(value), {
      message: 'must be the https:// address of the vault service, e.g. https://vault:8443',
    })
    .optional(),
  /** The deployment's CA certificate (ca.crt), which signed the vault service's certificate. */
  MEDLAKE_VAULT_CA_PATH: z.string().min(1).optional(),
  /** This server's client certificate for the vault service (client.crt). */
  MEDLAKE_VAULT_CLIENT_CERT_PATH: z.string().min(1).optional(),
  /** The key of that client certificate (client.key). */
  MEDLAKE_VAULT_CLIENT_KEY_PATH: z.string().min(1).optional(),
  /** Whether raw uploads stay in the landing zone after they are published. */
  MEDLAKE_LANDING_RETENTION: z.enum(['delete', 'keep']).default('delete'),
  /** DuckDB's memory limit for one ingest; beyond it DuckDB spills to disk. */
  MEDLAKE_INGEST_MEMORY: z
    .string()
    .regex(/^\d+(\.\d+)?\s*(KB|MB|GB|TB)$/i, 'must be a size such as 512MB or 2GB')
    .default('512MB'),
  /**
   * About how large a release's Parquet files grow before another is started: hundreds of MB
   * suit Spark and S3; a small monthly upload stays one file.
   */
  MEDLAKE_PARQUET_FILE_SIZE: z
    .string()
    .regex(/^\d+(\.\d+)?\s*(KB|MB|GB|TB)$/i, 'must be a size such as 256MB or 1GB')
    .default('256MB'),
  /**
   * On Spark, how much of a CSV whose contract declares no multi-line values each ingest task
   * reads (spark.sql.files.maxPartitionBytes of the ingest's session): a month of 40 GB is
   * about 300 tasks at the default.
   */
  MEDLAKE_SPARK_SPLIT_SIZE: z
    .string()
    .regex(/^\d+(\.\d+)?\s*(KB|MB|GB|TB)$/i, 'must be a size such as 128MB or 1GB')
    .default('128MB'),
  /** How many queries run at once per server process; more wait in the queue. */
  MEDLAKE_QUERY_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  /**
   * How many queries one user may have queued or running at once; a submit beyond it is
   * answered 429, so that one user cannot fill the queue in front of everyone else.
   */
  MEDLAKE_QUERY_QUEUE_PER_USER: z.coerce.number().int().min(1).default(10),
  /**
   * An aggregate result of at most this many rows is stored in the catalog with its query's
   * end instead of as a Parquet file (a dataset with an airlock always gets the file); 0
   * stores every result as a file.
   */
  MEDLAKE_RESULT_ROWS_IN_CATALOG: z.coerce.number().int().min(0).max(1000).default(1000),
  /** A query running longer than this is stopped and fails. */
  MEDLAKE_QUERY_TIMEOUT_SECONDS: z.coerce.number().int().min(1).default(600),
  /** DuckDB's memory limit for all queries together; beyond it DuckDB spills to disk. */
  MEDLAKE_QUERY_MEMORY: z
    .string()
    .regex(/^\d+(\.\d+)?\s*(KB|MB|GB|TB)$/i, 'must be a size such as 512MB or 2GB')
    .default('2GB'),
  /**
   * How long a download link works, in seconds. Each use of it is checked against its owner's
   * access at that moment, so a revoked grant ends it at once however long it had left.
   */
  MEDLAKE_DOWNLOAD_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(10)
    .max(7 * 86_400)
    .default(900),
  /**
   * On S3, how long the presigned URL a download link redirects to works, in seconds. The
   * store serves it without asking the server, so a revoked grant stops such a URL only once
   * it expires: this is how long revocation may wait.
   */
  MEDLAKE_DOWNLOAD_PRESIGN_TTL_SECONDS: z.coerce.number().int().min(1).max(3600).default(300),
  /**
   * The key download links are signed with (at least 32 characters). Every server instance
   * behind one load balancer needs the same one; the embedded default generates its own.
   */
  MEDLAKE_DOWNLOAD_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /**
   * The key the audit log's chain is signed with (at least 32 characters), kept away from the
   * catalog database. Every server instance on one catalog needs the same one; the embedded
   * default generates its own under MEDLAKE_HOME/keys.
   */
  MEDLAKE_AUDIT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /**
   * Where signed checkpoints of the audit chain's head are written: a directory outside
   * MEDLAKE_HOME (another disk, a mount from another host), so that the catalog and the keys
   * under MEDLAKE_HOME are not enough to rewrite the log unnoticed. By default the directory
   * `<MEDLAKE_HOME>-audit` beside MEDLAKE_HOME.
   */
  MEDLAKE_AUDIT_CHECKPOINT_DIR: z.string().min(1).optional(),
  /** How often, in seconds, a server notes the audit chain's head when it has grown. */
  MEDLAKE_AUDIT_CHECKPOINT_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  /**
   * The key TOTP secrets are encrypted with in the catalog (at least 32 characters). Shared by
   * every server instance; the embedded default generates its own under MEDLAKE_HOME/keys.
   */
  MEDLAKE_ACCOUNTS_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /**
   * The key the privacy controls derive their secrets from, each project's own pseudonyms and
   * the noise of noisy answers (at least 32 characters). Shared by every server instance and
   * known to the vault custodian; the embedded default generates its own under
   * MEDLAKE_HOME/keys.
   */
  MEDLAKE_PRIVACY_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /**
   * A secret that load balancers and monitors send in the X-Health-Token header to read the
   * full health report (at least 32 characters); without it, or an admin's sign-in,
   * /api/health says only ok or degraded.
   */
  MEDLAKE_HEALTH_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
  /** API requests a minute from one client address, whoever signs in from it. */
  MEDLAKE_RATE_LIMIT_PER_ADDRESS: z.coerce.number().int().min(1).max(1_000_000).default(6000),
  /** API requests a minute with one personal API token. */
  MEDLAKE_RATE_LIMIT_PER_TOKEN: z.coerce.number().int().min(1).max(1_000_000).default(1200),
  /** The event loop's lag, in milliseconds, from which new requests are shed with 503. */
  MEDLAKE_SHED_EVENT_LOOP_DELAY_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
  /** What a shed request is told to wait before it tries again, in seconds. */
  MEDLAKE_SHED_RETRY_AFTER_SECONDS: z.coerce.number().int().min(1).max(3600).default(10),
  /**
   * The window, in seconds, over which probing requests (refusals, not-found answers on
   * objects, refused specs) are counted per user or address into one audit entry.
   */
  MEDLAKE_PROBE_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(300),
  /** Failed sign-ins in a row after which an account is locked for a while. */
  MEDLAKE_LOGIN_MAX_FAILURES: z.coerce.number().int().min(1).max(100).default(5),
  /** How long a locked account stays locked, and the window failures per source count in. */
  MEDLAKE_LOGIN_LOCK_MINUTES: z.coerce.number().int().min(1).max(1440).default(15),
  /** Failed sign-ins from one address, within the lock window, after which it is refused. */
  MEDLAKE_LOGIN_MAX_FAILURES_PER_SOURCE: z.coerce.number().int().min(1).max(10_000).default(20),
  /**
   * Single sign-on through an OpenID Connect provider: its issuer URL, this client's id and
   * secret, and the address the provider sends the browser back to (…/api/v1/oidc/callback).
   * Unset: sign-in with password only.
   */
  MEDLAKE_OIDC_ISSUER: z.url().optional(),
  MEDLAKE_OIDC_CLIENT_ID: z.string().min(1).optional(),
  MEDLAKE_OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  MEDLAKE_OIDC_REDIRECT_URL: z.url().optional(),
  /** The claim that carries the user's groups or roles at the provider. */
  MEDLAKE_OIDC_ROLE_CLAIM: z.string().min(1).default('groups'),
  /**
   * Which claim values make which medlake role, e.g. "medlake-admins=admin,lab-research=researcher".
   * The first that matches, in this order, wins; with none, the account keeps its role.
   */
  MEDLAKE_OIDC_ROLE_MAP: z.string().default(''),
  /** Whether a first SSO sign-in of an unknown person creates their account. */
  MEDLAKE_OIDC_CREATE_ACCOUNTS: z.enum(['true', 'false']).default('false'),
  /** A browser session unused for this long ends. */
  MEDLAKE_SESSION_IDLE_MINUTES: z.coerce.number().int().min(1).max(1440).default(30),
  /** A browser session ends this long after sign-in, however busy. */
  MEDLAKE_SESSION_HOURS: z.coerce.number().int().min(1).max(720).default(12),
});

export type Env = Omit<
  z.infer<typeof envSchema>,
  'MEDLAKE_HOME' | 'MEDLAKE_VAULT_DIR' | 'MEDLAKE_AUDIT_CHECKPOINT_DIR'
> & {
  /** Absolute path. */
  MEDLAKE_HOME: string;
  /** Absolute path. */
  MEDLAKE_VAULT_DIR: string;
  /** Absolute path, outside MEDLAKE_HOME. */
  MEDLAKE_AUDIT_CHECKPOINT_DIR: string;
};

type EnvKey = keyof z.infer<typeof envSchema>;

/** Variables that may instead be given as `NAME_FILE`, a path to a file holding the value. */
const fileBackedKeys: readonly EnvKey[] = [
  'DATABASE_URL',
  'MEDLAKE_VAULT_KEY',
  'MEDLAKE_DOWNLOAD_SECRET',
  'MEDLAKE_AUDIT_SECRET',
  'MEDLAKE_ACCOUNTS_SECRET',
  'MEDLAKE_PRIVACY_SECRET',
  'MEDLAKE_OIDC_CLIENT_SECRET',
  'MEDLAKE_HEALTH_TOKEN',
];

export type ConfigProblem = { variable: string; message: string };

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(
      'Invalid configuration:\n' +
        problems.map((problem) => `  ${problem.variable}: ${problem.message}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Reads and validates the configuration. Throws a ConfigError naming every bad variable; it
 * never echoes a value back, since values may be secrets.
 */
export function loadEnv(source: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Env {
  const problems: ConfigProblem[] = [];
  const raw: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape) as EnvKey[]) {
    // An empty variable means "not set", as it does for most twelve-factor apps.
    const value = source[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  for (const key of fileBackedKeys) {
    const file = source[`${key}_FILE`];
    if (!file) continue;
    if (raw[key] !== undefined) {
      problems.push({ variable: key, message: `set ${key} or ${key}_FILE, not both` });
      continue;
    }
    try {
      raw[key] = readFileSync(path.resolve(cwd, file), 'utf8').trim();
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      problems.push({ variable: `${key}_FILE`, message: `cannot read ${file} (${reason})` });
    }
  }

  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push({ variable: String(issue.path[0]), message: issue.message });
    }
  }
  if (parsed.success) {
    problems.push(
      ...oidcProblems(parsed.data),
      ...engineProblems(parsed.data),
      ...storageProblems(parsed.data),
      ...vaultProblems(parsed.data),
    );
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);

  const home = path.resolve(cwd, parsed.data.MEDLAKE_HOME);
  const checkpoints = parsed.data.MEDLAKE_AUDIT_CHECKPOINT_DIR
    ? path.resolve(cwd, parsed.data.MEDLAKE_AUDIT_CHECKPOINT_DIR)
    : `${home}-audit`;
  const inside = path.relative(home, checkpoints);
  if (inside === '' || (!inside.startsWith('..') && !path.isAbsolute(inside))) {
    throw new ConfigError([
      {
        variable: 'MEDLAKE_AUDIT_CHECKPOINT_DIR',
        message:
          'must be outside MEDLAKE_HOME: checkpoints beside the catalog and its keys protect nothing',
      },
    ]);
  }
  const vault = parsed.data.MEDLAKE_VAULT_DIR;
  const extensions = parsed.data.MEDLAKE_DUCKDB_EXTENSIONS;
  return {
    ...parsed.data,
    ...(extensions ? { MEDLAKE_DUCKDB_EXTENSIONS: path.resolve(cwd, extensions) } : {}),
    MEDLAKE_HOME: home,
    MEDLAKE_VAULT_DIR: vault ? path.resolve(cwd, vault) : path.join(home, 'vault'),
    MEDLAKE_AUDIT_CHECKPOINT_DIR: checkpoints,
  };
}

function engineProblems(env: z.infer<typeof envSchema>): ConfigProblem[] {
  if (env.MEDLAKE_ENGINE === 'spark' && !env.SPARK_CONNECT_URL) {
    return [
      {
        variable: 'SPARK_CONNECT_URL',
        message: 'MEDLAKE_ENGINE=spark needs the Spark Connect server, e.g. sc://spark:15002',
      },
    ];
  }
  return [];
}

function vaultProblems(env: z.infer<typeof envSchema>): ConfigProblem[] {
  if (!env.MEDLAKE_VAULT_URL) return [];
  const problems: ConfigProblem[] = (
    [
      'MEDLAKE_VAULT_CA_PATH',
      'MEDLAKE_VAULT_CLIENT_CERT_PATH',
      'MEDLAKE_VAULT_CLIENT_KEY_PATH',
    ] as const
  )
    .filter((variable) => !env[variable])
    .map((variable) => ({ variable, message: 'needed with MEDLAKE_VAULT_URL (mutual TLS)' }));
  if (env.MEDLAKE_VAULT_KEY) {
    problems.push({
      variable: 'MEDLAKE_VAULT_KEY',
      message:
        'must not be set beside MEDLAKE_VAULT_URL: the vault key belongs on the vault host only',
    });
  }
  return problems;
}

function storageProblems(env: z.infer<typeof envSchema>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (env.MEDLAKE_STORAGE === 's3' && !env.MEDLAKE_S3_BUCKET) {
    problems.push({ variable: 'MEDLAKE_S3_BUCKET', message: 'needed when MEDLAKE_STORAGE=s3' });
  }
  if (env.MEDLAKE_S3_KMS_KEY_ID && env.MEDLAKE_S3_SSE !== 'aws:kms') {
    problems.push({
      variable: 'MEDLAKE_S3_KMS_KEY_ID',
      message: 'a KMS key is used only with MEDLAKE_S3_SSE=aws:kms',
    });
  }
  return problems;
}

/** A database URL fit for messages and logs: host, port and database, never the password. */
export function describeDatabaseUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  return `postgres://${url.hostname}${url.port ? `:${url.port}` : ''}${url.pathname}`;
}

/** Single sign-on needs its client and callback once an issuer is named, and known roles. */
function oidcProblems(env: z.infer<typeof envSchema>): ConfigProblem[] {
  if (!env.MEDLAKE_OIDC_ISSUER) return [];
  const problems: ConfigProblem[] = [];
  for (const key of ['MEDLAKE_OIDC_CLIENT_ID', 'MEDLAKE_OIDC_REDIRECT_URL'] as const) {
    if (!env[key])
      problems.push({ variable: key, message: 'needed when MEDLAKE_OIDC_ISSUER is set' });
  }
  try {
    parseRoleMap(env.MEDLAKE_OIDC_ROLE_MAP);
  } catch (error) {
    problems.push({ variable: 'MEDLAKE_OIDC_ROLE_MAP', message: (error as Error).message });
  }
  return problems;
}

const roles: readonly string[] = userRoleSchema.options;

/** "group=role,group=role" as ordered pairs; throws naming the first bad pair. */
export function parseRoleMap(text: string): Array<{ value: string; role: string }> {
  return text
    .split(',')
    .map((pair) => pair.trim())
    .filter(Boolean)
    .map((pair) => {
      const at = pair.lastIndexOf('=');
      const value = pair.slice(0, at).trim();
      const role = pair.slice(at + 1).trim();
      if (at <= 0 || !roles.includes(role)) {
        throw new Error(`"${pair}" is not claim-value=role with a role of ${roles.join(', ')}`);
      }
      return { value, role };
    });
}

/** A size such as "512MB" in bytes (powers of 1024). */
export function bytesOf(size: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB)$/i.exec(size.trim());
  if (!match) throw new Error(`not a size: ${size}`);
  const power = ['KB', 'MB', 'GB', 'TB'].indexOf(match[2]!.toUpperCase()) + 1;
  return Math.round(Number(match[1]) * 1024 ** power);
}
