// The sandbox's S3 store: s3rver (npm) storing every object on disk under MESH_S3_DIR, so a kill -9 or
// `sandbox/down` + `up` keeps the backups. One process, one store, two listeners: plain HTTP on
// MESH_S3_PORT (the suite's boto3, as before) and HTTPS on MESH_S3_TLS_PORT with a certificate of the
// sandbox CA (pgBackRest talks to S3 only over TLS). The access key comes from the environment, never the
// command line; s3rver's built-in S3RVER/S3RVER key is revoked.
'use strict';
const S3rver = require('s3rver');
const Account = require('s3rver/lib/models/account');
const fs = require('fs');

const env = process.env;
Account.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
Account.DUMMY_ACCOUNT.createKeyPair(env.MESH_S3_ACCESS_KEY, env.MESH_S3_SECRET_KEY);
delete env.MESH_S3_SECRET_KEY;

const common = { address: '127.0.0.1', directory: env.MESH_S3_DIR, silent: env.MESH_S3_VERBOSE !== '1',
                 vhostBuckets: false };
const plain = new S3rver({ ...common, port: Number(env.MESH_S3_PORT) });
const tls = new S3rver({ ...common, port: Number(env.MESH_S3_TLS_PORT),
                         key: fs.readFileSync(env.MESH_S3_TLS_KEY), cert: fs.readFileSync(env.MESH_S3_TLS_CERT) });
Promise.all([plain.run(), tls.run()]).then(
  addrs => console.log(`s3rver on ${addrs.map(a => `${a.address}:${a.port}`).join(' and ')}, ` +
                       `store ${env.MESH_S3_DIR}`),
  err => { console.error(`s3rver failed to start: ${err.message}`); process.exit(1); });
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
